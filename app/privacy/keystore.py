"""The key store outside backups: `schemadesk keys export|import`, and what a restore keeps.

Backups never carry `subject_key` (see `app.backup.engine.SKIPPED_TABLES`): a
key deleted by an erasure is then gone from every backup taken before, not only
from the database. What a disaster recovery needs instead is the instance key
(FIELD_ENCRYPTION_KEYS) plus a key export:

- `export_keys` writes every data key as it is stored (wrapped by the instance
  key: the file alone opens nothing) to a JSON file;
- `import_keys` adds the keys of a file that the database lacks, never one of
  a record that has a tombstone in `subject_erasure`, and says how many it
  skipped;
- `set_aside` / `put_back`: a restore copies the target's live keys into
  KEYS_KEEP_TABLE before it replaces the tables and puts them back after, so a
  restore neither loses live keys nor brings destroyed ones back. A backup
  taken before keys were left out (it still holds `subject_key` rows) adds
  the keys the target lacks; the tombstones destroy them again where needed
  (`app.privacy.restore`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from app.backup.engine import KEYS_KEEP_TABLE, quote
from app.i18n import N_, gettext
from app.state import state

FORMAT_NAME = "schemadesk-subject-keys"
FORMAT_VERSION = 1
COLUMNS = ("id", "entity", "record_id", "wrapped", "created_at")
BATCH = 1000


class KeystoreError(Exception):
    """A key file that cannot be read or imported; the message says why."""


@dataclass
class ImportResult:
    """What `import_keys` did with the keys of a file."""

    added: int = 0
    present: int = 0  # already in the database
    skipped: int = 0  # their record was erased (a tombstone in subject_erasure)
    unreadable: int = 0  # wrapped by an instance key this console does not hold


def _table() -> sa.Table:
    return state().models.system["subject_key"]


# --- export and import ------------------------------------------------------------


def export_keys(path: str | Path) -> int:
    """Write every subject key (wrapped, as stored) to `path` as JSON; return how many.

    The file is written as `<path>.part` (readable by its owner only) and
    renamed when complete.
    """
    from app.audit import record_event

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    table, count = _table(), 0
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            head = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                    "schema": state().spec.stem,
                    "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
            fh.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "keys": [')
            with state().db.engine.connect() as conn:
                rows = conn.execute(sa.select(*(table.c[c] for c in COLUMNS))
                                    .order_by(table.c.created_at, table.c.id))
                for row in rows:
                    item = dict(zip(COLUMNS, row, strict=True))
                    item["created_at"] = _iso(item["created_at"])
                    fh.write(("\n" if count == 0 else ",\n") + json.dumps(item))
                    count += 1
            fh.write("\n]}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    record_event("keys_export", detail={"file": target.name, "keys": count})
    return count


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def read_keys(path: str | Path) -> list[dict[str, Any]]:
    """The keys of an export file; KeystoreError when it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KeystoreError(gettext(N_("%(file)s cannot be read as a key export: %(error)s"),
                                    file=str(path), error=str(exc))) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME \
            or not isinstance(data.get("keys"), list):
        raise KeystoreError(gettext(N_("%(file)s is not a SchemaDesk key export "
                                       "(`schemadesk keys export`)."), file=str(path)))
    keys = []
    for item in data["keys"]:
        if not isinstance(item, dict) or not all(item.get(c) for c in ("id", "entity",
                                                                         "wrapped")):
            raise KeystoreError(gettext(N_("%(file)s is damaged: a key lacks its id, entity "
                                           "or wrapped value."), file=str(path)))
        created = item.get("created_at")
        keys.append({
            "id": str(item["id"]), "entity": str(item["entity"]),
            "record_id": None if item.get("record_id") is None else str(item["record_id"]),
            "wrapped": str(item["wrapped"]),
            "created_at": dt.datetime.fromisoformat(created) if created
            else dt.datetime.now(dt.UTC).replace(tzinfo=None)})
    return keys


def _opens(wrapped: str) -> bool:
    from cryptography.fernet import InvalidToken

    from app.security.encryption import cipher

    try:
        cipher().decrypt(wrapped.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError, ValueError):
        return False
    return True


def import_keys(path: str | Path) -> ImportResult:
    """Add the keys of an export that the database lacks, except those of erased records."""
    from app.audit import record_event

    keys, table = read_keys(path), _table()
    erasure = state().models.system["subject_erasure"]
    result, new = ImportResult(), []
    with state().db.engine.begin() as conn:
        erased = {(e, r) for e, r in conn.execute(sa.select(erasure.c.entity,
                                                            erasure.c.record_id))}
        present = set(conn.execute(sa.select(table.c.id)).scalars())
        for key in keys:
            if key["record_id"] is not None and (key["entity"], key["record_id"]) in erased:
                result.skipped += 1
            elif key["id"] in present:
                result.present += 1
            else:
                present.add(key["id"])
                new.append(key)
                result.unreadable += 0 if _opens(key["wrapped"]) else 1
        for start in range(0, len(new), BATCH):
            conn.execute(sa.insert(table), new[start:start + BATCH])
        result.added = len(new)
    record_event("keys_import", detail={"file": Path(path).name, "added": result.added,
                                        "present": result.present, "skipped": result.skipped})
    return result


# --- what a restore keeps ---------------------------------------------------------


def set_aside(conn: Connection) -> bool:
    """Copy the target's keys into KEYS_KEEP_TABLE; return whether there is anything to put back.

    A KEYS_KEEP_TABLE left by a restore that failed on MariaDB (which commits
    DDL as it goes) holds the keys of that time: it is kept and merged with the
    live table (the live row wins for the same id), never dropped.
    """
    inspector = sa.inspect(conn)
    live = inspector.has_table("subject_key")
    left = inspector.has_table(KEYS_KEEP_TABLE)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA secure_delete=ON")  # copies that are dropped get zeroed
    keep, keys = quote(conn, KEYS_KEEP_TABLE), quote(conn, "subject_key")
    if live and not left:
        conn.exec_driver_sql(f"CREATE TABLE {keep} AS SELECT * FROM {keys}")
    elif live and left:
        columns = _shared_columns(conn)
        conn.exec_driver_sql(f"DELETE FROM {keep} WHERE id IN (SELECT id FROM {keys})")
        conn.exec_driver_sql(f"INSERT INTO {keep} ({columns}) SELECT {columns} FROM {keys}")
    return live or left


def _shared_columns(conn: Connection) -> str:
    inspector = sa.inspect(conn)
    kept = {c["name"] for c in inspector.get_columns(KEYS_KEEP_TABLE)}
    return ", ".join(quote(conn, c["name"]) for c in inspector.get_columns("subject_key")
                     if c["name"] in kept)


def put_back(conn: Connection, kept: bool) -> int:
    """Put the target's keys back over the restored database; return the backup's own key rows.

    The backup's rows (only a file taken before keys were left out has any)
    stay where the target has no key of that id.
    """
    keys = quote(conn, "subject_key")
    from_file = int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {keys}").scalar() or 0)
    if not kept:
        return from_file
    keep, columns = quote(conn, KEYS_KEEP_TABLE), _shared_columns(conn)
    conn.exec_driver_sql(f"DELETE FROM {keys} WHERE id IN (SELECT id FROM {keep})")
    conn.exec_driver_sql(f"INSERT INTO {keys} ({columns}) SELECT {columns} FROM {keep}")
    conn.exec_driver_sql(f"DROP TABLE {keep}")
    return from_file


def rescue(conn: Connection) -> None:
    """After a failed MariaDB restore, before its tables are dropped: keep the keys aside.

    When the keys were already put back (the failure came later), the live
    table is copied aside again; an empty copy is not left behind.
    """
    inspector = sa.inspect(conn)
    keep = quote(conn, KEYS_KEEP_TABLE)
    if not inspector.has_table(KEYS_KEEP_TABLE):
        if not inspector.has_table("subject_key"):
            return
        conn.exec_driver_sql(f"CREATE TABLE {keep} AS SELECT * FROM {quote(conn, 'subject_key')}")
    if not conn.exec_driver_sql(f"SELECT COUNT(*) FROM {keep}").scalar():
        conn.exec_driver_sql(f"DROP TABLE {keep}")


def live_keys(conn: Connection) -> int:
    """How many keys the database holds."""
    if not sa.inspect(conn).has_table("subject_key"):
        return 0
    return int(conn.exec_driver_sql(
        f"SELECT COUNT(*) FROM {quote(conn, 'subject_key')}").scalar() or 0)
