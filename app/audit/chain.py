"""The hash chain: canonical serialisation, appending under the head lock, verify.

Every audit entry stores `prev_hash` (the hash of the entry before it, or
`GENESIS` for the first) and `hash`, the SHA-256 (hex) of its canonical form:

    canonical = JSON of {"v": 1, "id", "created_at", "actor_id", "actor_name",
                         "source", "client_ip", "request_id", "action", "entity",
                         "record_id", "record_title", "changes", "detail",
                         "prev_hash"}
                with keys sorted, separators (",", ":"), non-ASCII kept, UTF-8;
    created_at  = "YYYY-MM-DDTHH:MM:SS" (UTC, whole seconds: every backend keeps them);
    changes, detail = the stored JSON text itself (hashed as a string, so
                verification never depends on re-serialising JSON);
    absent values = null.

Entry ids are assigned by the writer holding the chain head as `last_id + 1`,
so the chain has no gaps: a missing id is a deleted entry. The head row
(`audit_head`, id 1) is locked in the same transaction as the change it records
(`SELECT ... FOR UPDATE` on PostgreSQL and MariaDB; on SQLite the first
statement writes to it, which takes the database write lock), so appends from
any number of processes form one linear chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from app.i18n import N_

GENESIS = "0" * 64
CANONICAL_VERSION = 1
# Column widths of audit_log: values are cut to them *before* hashing, so the
# stored row is exactly what was hashed on every backend.
WIDTHS = {
    "actor_name": 255,
    "source": 16,
    "client_ip": 64,
    "request_id": 64,
    "action": 32,
    "entity": 64,
    "record_id": 64,
    "record_title": 255,
}
HASHED_COLUMNS = (
    "id",
    "created_at",
    "actor_id",
    "actor_name",
    "source",
    "client_ip",
    "request_id",
    "action",
    "entity",
    "record_id",
    "record_title",
    "changes",
    "detail",
    "prev_hash",
)


def utc_seconds() -> dt.datetime:
    """Return the current UTC time, naive, cut to whole seconds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def canonical(entry: dict[str, Any]) -> bytes:
    """Return the canonical bytes of an entry (see the module docstring)."""
    doc: dict[str, Any] = {"v": CANONICAL_VERSION}
    for name in HASHED_COLUMNS:
        value = entry.get(name)
        if isinstance(value, dt.datetime):
            value = value.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")
        elif name in ("id", "actor_id") and value is not None:
            value = int(value)
        doc[name] = value
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def entry_hash(entry: dict[str, Any]) -> str:
    """Return the SHA-256 hex digest of an entry's canonical form."""
    return hashlib.sha256(canonical(entry)).hexdigest()


def fit(entry: dict[str, Any]) -> dict[str, Any]:
    """Cut string values to their column widths (in place); return the entry."""
    for name, width in WIDTHS.items():
        value = entry.get(name)
        if value is not None:
            value = str(value)
            entry[name] = value if len(value) <= width else value[: width - 1] + "…"
    return entry


def lock_head(conn: Connection, head: sa.Table, log: sa.Table) -> tuple[int, str]:
    """Lock the chain head for this transaction; return (last_id, last_hash).

    The head row is created on first use; concurrent creators race harmlessly
    (INSERT ... ON CONFLICT DO NOTHING / INSERT IGNORE / INSERT OR IGNORE).
    """
    dialect = conn.dialect.name
    if dialect == "sqlite":
        # Writing first takes SQLite's RESERVED lock before we read the head.
        conn.execute(sa.update(head).where(head.c.id == 1).values(last_id=head.c.last_id))
        row = conn.execute(_head_select(head)).first()
    else:
        select = sa.select(head.c.last_id, head.c.last_hash).where(head.c.id == 1)
        row = conn.execute(select.with_for_update()).first()
    if row is None:
        _create_head(conn, head, log)
        select = sa.select(head.c.last_id, head.c.last_hash).where(head.c.id == 1)
        if dialect != "sqlite":
            select = select.with_for_update()
        row = conn.execute(select).one()
    return int(row.last_id or 0), row.last_hash


def _head_select(head: sa.Table) -> sa.Select:
    return sa.select(head.c.last_id, head.c.last_hash).where(head.c.id == 1)


def _create_head(conn: Connection, head: sa.Table, log: sa.Table) -> None:
    """Insert head row 1 from the newest entry (or the genesis hash) if nobody did."""
    newest = conn.execute(
        sa.select(log.c.id, log.c.hash).order_by(log.c.id.desc()).limit(1)
    ).first()
    values = {"id": 1, "last_id": newest.id if newest else 0,
              "last_hash": newest.hash if newest else GENESIS}
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(head).values(**values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        conn.execute(sa.insert(head).values(**values).prefix_with("OR IGNORE"))
    else:
        conn.execute(sa.insert(head).values(**values).prefix_with("IGNORE"))


def append(conn: Connection, head: sa.Table, log: sa.Table,
           entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chain and insert `entries` in `conn`'s transaction; return them with id and hash.

    Each entry holds the audit_log columns except id, prev_hash and hash. The
    head stays locked until the transaction ends, which serialises writers.
    """
    if not entries:
        return []
    last_id, last_hash = lock_head(conn, head, log)
    rows = []
    for entry in entries:
        row = fit(dict(entry))
        row.setdefault("created_at", utc_seconds())
        row["created_at"] = row["created_at"].replace(microsecond=0)
        last_id += 1
        row["id"] = last_id
        row["prev_hash"] = last_hash
        row["hash"] = last_hash = entry_hash(row)
        rows.append(row)
    conn.execute(sa.insert(log), rows)
    conn.execute(
        sa.update(head).where(head.c.id == 1).values(last_id=last_id, last_hash=last_hash)
    )
    return rows


@dataclass
class Problem:
    """The first place where the chain does not hold."""

    entry_id: int | None
    reason: str  # altered | broken_link | missing | unexpected_id | head | expected_head
    msgid: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """Return the problem in the current language."""
        from app.i18n import gettext

        return gettext(self.msgid, **self.params)


@dataclass
class VerifyResult:
    """What `verify` found: entries checked, the head, and the first problem."""

    count: int
    head_id: int
    head_hash: str
    problem: Problem | None = None
    expected_head_found: bool | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(
    conn: Connection,
    head: sa.Table,
    log: sa.Table,
    expect_head: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 5000,
) -> VerifyResult:
    """Walk the whole chain in id order and return the first mismatch, if any.

    `expect_head`: a hash an auditor recorded earlier; it must still be an entry
    of the (valid) chain, which proves nothing before it was rewritten since.
    `progress(done, total)` is called after each batch.
    """
    total = conn.execute(sa.select(sa.func.count()).select_from(log)).scalar_one()
    head_row = conn.execute(_head_select(head)).first()
    prev_hash, prev_id, count = GENESIS, 0, 0
    found = None if expect_head is None else False
    columns = [log.c[name] for name in HASHED_COLUMNS] + [log.c.hash]
    last_seen = 0
    while True:
        rows = conn.execute(
            sa.select(*columns).where(log.c.id > last_seen).order_by(log.c.id).limit(batch)
        ).mappings().all()
        if not rows:
            break
        for row in rows:
            problem = _check_row(row, prev_id, prev_hash)
            if problem is not None:
                return VerifyResult(count, prev_id, prev_hash, problem, found)
            prev_id, prev_hash = int(row["id"]), row["hash"]
            count += 1
            if found is False and row["hash"] == expect_head:
                found = True
        last_seen = prev_id
        if progress is not None:
            progress(count, total)
    result = VerifyResult(count, prev_id, prev_hash, None, found)
    if head_row is None:
        if count:
            result.problem = Problem(None, "head", N_("The chain head record is missing."))
    elif (int(head_row.last_id or 0), head_row.last_hash) != (prev_id, prev_hash):
        missing = int(head_row.last_id or 0)
        if missing > prev_id:
            result.problem = Problem(
                missing, "missing",
                N_("Entry #%(id)s is missing: the chain ends at #%(last)s but its head "
                   "records #%(id)s."),
                {"id": missing, "last": prev_id},
            )
        else:
            result.problem = Problem(
                prev_id, "head",
                N_("The chain head records #%(head)s (%(hash)s), but the chain ends at "
                   "#%(last)s."),
                {"head": head_row.last_id, "hash": head_row.last_hash[:12], "last": prev_id},
            )
    if result.problem is None and found is False:
        result.problem = Problem(
            None, "expected_head",
            N_("The expected head %(hash)s is not in the chain: the log was rewritten."),
            {"hash": expect_head},
        )
    return result


def _check_row(row: Any, prev_id: int, prev_hash: str) -> Problem | None:
    entry_id = int(row["id"])
    if entry_id != prev_id + 1:
        if entry_id > prev_id + 1:
            first = prev_id + 1
            gap = f"#{first}" if entry_id == first + 1 else f"#{first}..#{entry_id - 1}"
            return Problem(first, "missing",
                           N_("Entry %(gap)s is missing (entry #%(id)s follows #%(prev)s)."),
                           {"gap": gap, "id": entry_id, "prev": prev_id})
        return Problem(entry_id, "unexpected_id", N_("Entry #%(id)s is out of sequence."),
                       {"id": entry_id})
    if row["prev_hash"] != prev_hash:
        return Problem(
            entry_id, "broken_link",
            N_("Entry #%(id)s does not follow #%(prev)s: its previous hash does not match "
               "(an entry was inserted, deleted or reordered)."),
            {"id": entry_id, "prev": prev_id},
        )
    if entry_hash(dict(row)) != row["hash"]:
        return Problem(entry_id, "altered",
                       N_("Entry #%(id)s was altered: its content does not match its hash."),
                       {"id": entry_id})
    return None


def dumps(value: Any) -> str | None:
    """Return the JSON text stored in `changes`/`detail` (None for empty)."""
    if value is None or value == {} or value == []:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str,
                      separators=(",", ":"))

