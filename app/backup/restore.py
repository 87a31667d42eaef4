"""Restore a backup into an empty database of any supported engine.

The order is: verify the whole file, refuse a non-empty target (unless forced,
and then back it up first), migrate to the backup's revision, load every table
in dependency order, reset sequences, compare every table's rows and checksum
with the manifest, upgrade to head. On PostgreSQL and SQLite all of it runs in
one transaction, so a failure leaves the target exactly as it was; MariaDB
commits DDL as it goes, so there a failure empties the target again and, after
a forced restore, puts the previous contents back from the safety backup.

The audit log is the exception: a target that has one keeps it, and the restore
is appended to it (see `app.backup.audit_log`). So are the data subjects' keys:
backups do not carry them, and the target's `subject_key` is set aside and put
back (see `app.privacy.keystore`), so a restore never loses a live key nor brings
a destroyed one back.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.engine import Connection, Engine

from app.backup import audit_log, fastload, pglines
from app.backup.create import TableLayout, create_backup
from app.backup.engine import (
    AUDIT_KEEP_TABLE,
    KEYS_KEEP_TABLE,
    app_url,
    check_foreign_keys,
    dedicated_engine,
    drop_all_tables,
    quote,
    release_app_connections,
    row_counts,
)
from app.backup.format import BackupError, BackupReader, row_decoder, row_encoder, sql_type
from app.backup.verify import require_valid
from app.i18n import N_, gettext
from app.privacy import keystore
from app.privacy import restore as privacy_restore
from app.state import state

BATCH_ROWS = 2000


@dataclass
class RestoreReport:
    """What a restore did."""

    path: str
    revision: str | None
    head: str | None
    tables: int = 0
    rows: int = 0
    seconds: float = 0.0
    safety_backup: str | None = None
    warnings: list[str] = field(default_factory=list)
    signed: bool = True  # False: an unsigned file, restored with allow_unsigned
    keep_audit: bool = False  # the target's audit log survives (it had entries)
    audit_entry: int | None = None  # the id of the `restore` entry
    subject_keys: int = 0  # the data subjects' keys the database holds after the restore

    def audit_detail(self) -> dict[str, Any]:
        """What the `restore` audit entry says."""
        return {"file": self.path, "revision": self.revision, "tables": self.tables,
                "rows": self.rows, "safety_backup": self.safety_backup,
                "signed": self.signed,
                "audit_log": "kept" if self.keep_audit else "restored"}


def restore_backup(
    path: str | Path,
    *,
    force: bool = False,
    keys: str | list[str] | None = None,
    url: str | None = None,
    safety_backup: bool = True,
    signing_keys: list[str] | str | None = None,
    allow_unsigned: bool = False,
) -> RestoreReport:
    """Restore `path` into the app's database (or `url`); raise BackupError if refused or failed.

    A forced restore over a non-empty database backs it up first, unless
    `safety_backup=False` (the caller already holds a backup of it). The file
    must be signed by this console's key or one of `signing_keys` (see
    `app.backup.signature`); an unsigned one only with `allow_unsigned`.
    """
    from app.migrate import head_revision, known_revision

    started = time.perf_counter()
    path = str(path)
    keys = keys if keys is not None else current_app.config.get("BACKUP_ENCRYPTION_KEY")
    # PostgreSQL and SQLite restore in one transaction that hashes every table as it loads
    # it, so the file's data is read once; MariaDB commits as it goes: verify all first.
    transactional = sa.make_url(url or app_url()).get_backend_name() != "mysql"
    checked = require_valid(path, keys, signing_keys=signing_keys, allow_unsigned=allow_unsigned,
                            data=not transactional)
    reader = BackupReader(path, keys)
    manifest = reader.manifest
    stem = state().spec.stem
    if manifest["schema"]["name"] != stem:
        raise BackupError(
            gettext(N_("%(file)s is a backup of schema '%(theirs)s'; this console serves "
                       "'%(ours)s'. Start it with that schema to restore it."),
                    file=path, theirs=manifest["schema"]["name"], ours=stem)
        )
    revision = manifest.get("revision")
    if not revision or not known_revision(revision):
        raise BackupError(
            gettext(N_("%(file)s was taken at migration %(revision)s, which this installation "
                       "does not have. Restore it with the version of SchemaDesk and the "
                       "migrations it was taken with."), file=path, revision=str(revision))
        )
    release_app_connections()
    engine = dedicated_engine(url, foreign_keys=False)
    report = RestoreReport(path=path, revision=revision, head=head_revision())
    report.signed = checked.signed
    if not checked.signed:
        report.warnings.append(gettext(N_("%(file)s is not signed; it was restored because "
                                          "--allow-unsigned was given."), file=path))
    try:
        with engine.connect() as conn:
            occupied = {t: n for t, n in row_counts(conn).items() if n}
        if occupied and not force:
            raise BackupError(
                gettext(N_("The target database is not empty (%(rows)d rows in %(tables)d "
                           "tables). Restore into an empty database, or use --force: the "
                           "current contents are backed up first."),
                        rows=sum(occupied.values()), tables=len(occupied))
            )
        report.keep_audit = bool(occupied.get("audit_log"))
        if occupied and safety_backup:
            report.safety_backup = str(
                create_backup(note=f"before restore of {Path(path).name}", keys=keys, url=url)
            )
        if engine.dialect.name == "mysql":
            _restore_step_by_step(engine, reader, report)
        else:
            _restore_in_one_transaction(engine, reader, report)
    finally:
        reader.close()
        engine.dispose()
        release_app_connections()
        state().schema_mismatch = None
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _restore_in_one_transaction(
    engine: Engine, reader: BackupReader, report: RestoreReport
) -> None:
    """PostgreSQL, SQLite: DDL is transactional, so everything commits or nothing does."""
    from app.migrate import upgrade
    from app.privacy.lookup import backfill_all

    try:
        with engine.connect() as conn:
            with conn.begin():
                kept = audit_log.set_aside(conn) if report.keep_audit else None
                erasures = privacy_restore.set_aside(conn)
                keys_kept = keystore.set_aside(conn)
                drop_all_tables(conn, keep=(AUDIT_KEEP_TABLE, KEYS_KEEP_TABLE))
                upgrade(report.revision or "head", conn)
                _load(conn, reader, report)
                upgrade("head", conn)
                if kept is not None:
                    audit_log.put_back(conn, kept)
                _put_back_keys(conn, keys_kept, report)
                privacy_restore.put_back(conn, erasures)  # erased data stays erased
                backfill_all(conn)  # an older backup's clear values: sealed now
                report.subject_keys = keystore.live_keys(conn)
                check_foreign_keys(conn)
                report.audit_entry = audit_log.record_restore(conn, report.audit_detail())
    except Exception as exc:
        raise BackupError(
            gettext(N_("Restore failed and was rolled back; the target is as it was: "
                       "%(error)s"), error=_first_line(exc))
        ) from exc


def _restore_step_by_step(engine: Engine, reader: BackupReader, report: RestoreReport) -> None:
    """MariaDB/MySQL: DDL commits on its own, so undo by hand when something fails."""
    from app.migrate import upgrade
    from app.privacy.lookup import backfill_all

    try:
        with engine.connect() as conn:
            kept = audit_log.set_aside(conn) if report.keep_audit else None
            erasures = privacy_restore.set_aside(conn)
            keys_kept = keystore.set_aside(conn)
            conn.commit()
            drop_all_tables(conn, keep=(AUDIT_KEEP_TABLE, KEYS_KEEP_TABLE))
            conn.commit()
            upgrade(report.revision or "head", conn)
            conn.commit()
            with conn.begin():
                _load(conn, reader, report)
            upgrade("head", conn)
            conn.commit()
            if kept is not None:
                audit_log.put_back(conn, kept)
                conn.commit()
            _put_back_keys(conn, keys_kept, report)
            conn.commit()
            privacy_restore.put_back(conn, erasures)  # erased data stays erased
            backfill_all(conn)  # an older backup's clear values: sealed now
            report.subject_keys = keystore.live_keys(conn)
            conn.commit()
            report.audit_entry = audit_log.record_restore(conn, report.audit_detail())
            conn.commit()
    except Exception as exc:
        with engine.connect() as conn:
            keystore.rescue(conn)  # the live keys are in no backup: never drop them
            drop_all_tables(conn, keep=(KEYS_KEEP_TABLE,))
            conn.commit()
        message = gettext(N_("Restore failed and the target was emptied again: %(error)s"),
                          error=_first_line(exc))
        if report.safety_backup:
            restore_backup(report.safety_backup, keys=_keys_of(reader), url=str(
                engine.url.render_as_string(hide_password=False)))
            message = gettext(
                N_("Restore failed; the previous contents were put back from %(backup)s: "
                   "%(error)s"), backup=report.safety_backup, error=_first_line(exc))
        raise BackupError(message) from exc


def _put_back_keys(conn: Connection, kept: bool, report: RestoreReport) -> None:
    """The target's own subject keys over the restored (empty) table; warn of a file with keys."""
    from_file = keystore.put_back(conn, kept)
    if from_file:
        report.warnings.append(gettext(
            N_("%(file)s holds %(count)d subject key(s): it was taken before backups left them "
               "out. Keys this database lacked were added, except those of erased records. "
               "Delete that file once a newer backup exists."),
            file=Path(report.path).name, count=from_file))


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _keys_of(reader: BackupReader) -> Any:
    return current_app.config.get("BACKUP_ENCRYPTION_KEY") if reader.fernet else None


def _without_foreign_key_checks(conn: Connection) -> None:
    """Load rows in primary-key order even where a row refers to a later one."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")  # checked at COMMIT
    elif dialect == "mysql":
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
    elif dialect == "postgresql":
        savepoint = conn.begin_nested()
        try:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            savepoint.commit()
        except sa.exc.DBAPIError:  # not a superuser: keep the checks, rows are in id order
            savepoint.rollback()


def _load(conn: Connection, reader: BackupReader, report: RestoreReport) -> None:
    """Load every table in bulk (see `app.backup.fastload`), then check it read back."""
    _without_foreign_key_checks(conn)
    fastload.relax_checks(conn)
    loaded = []
    for table in reader.tables:
        if report.keep_audit and table["name"] in audit_log.AUDIT_TABLES:
            continue  # the target's own log is put back instead (never rewound)
        indexes = fastload.secondary_indexes(conn, table["name"])
        fastload.drop_indexes(conn, indexes)
        insert = _server_loader(conn, table)
        if insert is not None:
            rows, target_sha = _load_table_on_server(conn, reader, table, insert)
        else:
            rows, target_sha = _load_table(conn, reader, table)
        fastload.create_indexes(conn, indexes)
        _check_read_back(conn, table, target_sha, rows)
        if target_sha != table["sha256"]:
            report.warnings.append(
                gettext(N_("%(table)s: this database keeps times to the second; fractions of "
                           "a second were dropped."), table=table["name"])
            )
        loaded.append(table["name"])
        report.tables += 1
        report.rows += rows
    fastload.restore_checks(conn)
    fastload.check_foreign_keys(conn, loaded)
    if conn.dialect.name == "postgresql":
        _reset_sequences(conn, reader.tables)


def _load_table(conn: Connection, reader: BackupReader, table: dict[str, Any]) -> tuple[int, str]:
    """Stream one table's lines into it; return its row count and the SHA the target must read.

    The file's own SHA-256 is computed on the way, so a file that changed after
    it was verified (or was only checked for its signature) fails here.
    """
    tags = [t for _, t in table["columns"]]
    decode = row_decoder(tags)
    expected = _target_encoder(conn.dialect.name, tags)
    write, finish = fastload.bulk_writer(conn, table["name"], table["columns"])
    file_sha, target_sha = hashlib.sha256(), hashlib.sha256()
    batch: list[Any] = []
    rows = hashed = 0
    try:
        for line in reader.lines(table):
            file_sha.update(line)
            hashed += 1
            values = decode(line)
            target_sha.update(expected(values) if expected else line)
            batch.append(values)
            rows += 1
            if len(batch) >= BATCH_ROWS:
                write(batch)
                batch = []
        if batch:
            write(batch)
    except Exception as exc:
        finish(exc)
        if _altered(reader, table, file_sha, hashed):  # name the cause, not its symptom
            raise _altered_error(reader, table) from exc
        raise
    finish(None)
    if rows != table["rows"] or file_sha.hexdigest() != table["sha256"]:
        raise _altered_error(reader, table)
    return rows, target_sha.hexdigest()


def _server_loader(conn: Connection, table: dict[str, Any]) -> str | None:
    """PostgreSQL: the `INSERT … SELECT` parsing staged lines, where it loads them exactly."""
    if conn.dialect.name != "postgresql":
        return None
    columns = [tuple(c) for c in table["columns"]]
    if pglines.render_sql(conn, table["name"], columns, table["primary_key"]) is None:
        return None  # the read-back check could not be done on the server either
    return pglines.loader_sql(conn, table["name"], columns)


def _load_table_on_server(conn: Connection, reader: BackupReader, table: dict[str, Any],
                          insert: str) -> tuple[int, str]:
    """Stage the member's lines as they are and let PostgreSQL parse them into the table."""
    sha = hashlib.sha256()
    counted = {"rows": 0}

    def blocks() -> Iterator[bytes]:
        for block in reader.blocks(table):
            sha.update(block)
            counted["rows"] += block.count(b"\n")
            yield block

    try:
        pglines.stage(conn, blocks())
        if counted["rows"] != table["rows"] or sha.hexdigest() != table["sha256"]:
            raise _altered_error(reader, table)
        pglines.load(conn, insert)
    except BackupError:
        raise
    except Exception as exc:
        if _altered(reader, table, hashlib.sha256(), 0):  # name the cause, not its symptom
            raise _altered_error(reader, table) from exc
        raise
    return counted["rows"], table["sha256"]


def _altered(reader: BackupReader, table: dict[str, Any], sha: Any, hashed: int) -> bool:
    """After a failed load: does the rest of the member show the file itself was altered?

    A flipped byte can break a line's JSON or a value the database refuses before
    the table's checksum is known; hash what was not read yet to tell.
    """
    try:
        for number, line in enumerate(reader.lines(table)):
            if number >= hashed:
                sha.update(line)
    except BackupError:
        return True
    return sha.hexdigest() != table["sha256"]


def _altered_error(reader: BackupReader, table: dict[str, Any]) -> BackupError:
    return BackupError(gettext(N_("%(file)s is altered: the checksum of table %(table)s does "
                                  "not match its manifest."), file=reader.path,
                               table=table["name"]))


def _inserter(conn: Connection, name: str, columns: list[list[str]]) -> tuple[str, Any]:
    """The table's INSERT in the driver's own syntax, and a row -> driver parameters function.

    Rows go to the driver's executemany directly, with the column types' bind
    processing done here once per value: SQLAlchemy's per-row parameter
    handling would otherwise cost more than the database's own work.
    """
    dialect = conn.dialect
    table = sa.table(name, *[sa.column(c, sql_type(t)) for c, t in columns])
    compiled = sa.insert(table).compile(dialect=dialect)
    names = [c for c, _ in columns]
    processors = [
        (i, proc) for i, proc in (
            (i, sql_type(t).dialect_impl(dialect).bind_processor(dialect))
            for i, (_, t) in enumerate(columns)
        ) if proc is not None
    ]
    if compiled.positional:
        order = [names.index(n) for n in compiled.positiontup]

        def to_tuple(values: list[Any]) -> tuple[Any, ...]:
            for i, proc in processors:
                values[i] = proc(values[i])
            return tuple(values[i] for i in order)

        return str(compiled), to_tuple
    keys = [compiled.escaped_bind_names.get(n, n) for n in names]

    def to_dict(values: list[Any]) -> dict[str, Any]:
        for i, proc in processors:
            values[i] = proc(values[i])
        return dict(zip(keys, values, strict=True))

    return str(compiled), to_dict


def _target_encoder(dialect: str, tags: list[str]) -> Any:
    """How the target will give values back, where it stores them less precisely."""
    if dialect != "mysql" or not any(t in ("datetime", "time") for t in tags):
        return None
    encode = row_encoder(tags)
    lossy = [i for i, t in enumerate(tags) if t in ("datetime", "time")]

    def expected(values: list[Any]) -> bytes:
        values = list(values)
        for i in lossy:
            if values[i] is not None:
                values[i] = values[i].replace(microsecond=0)
        return encode(values)

    return expected


def _check_read_back(conn: Connection, table: dict[str, Any], expected_sha: str, rows: int) -> None:
    layout = TableLayout(table["name"], [tuple(c) for c in table["columns"]],
                         table["primary_key"])
    select = None
    if conn.dialect.name == "postgresql":
        select = pglines.render_sql(conn, layout.name, layout.columns, layout.primary_key)
    if select is not None:
        found, digest = pglines.digest(conn, select)
    else:
        encode = row_encoder([t for _, t in layout.columns])
        sha = hashlib.sha256()
        found = 0
        for row in fastload.read_rows(conn, layout.name, layout.columns, layout.primary_key):
            sha.update(encode(row))
            found += 1
        digest = sha.hexdigest()
    if found != rows or digest != expected_sha:
        raise BackupError(
            gettext(N_("Table %(table)s reads back differently from the backup (%(found)d of "
                       "%(rows)d rows); nothing was restored."),
                    table=table["name"], found=found, rows=rows)
        )


def _reset_sequences(conn: Connection, tables: list[dict[str, Any]]) -> None:
    """Point each serial column's sequence past the largest restored id."""
    for table in tables:
        for column, tag in table["columns"]:
            if tag != "int" or column not in table["primary_key"]:
                continue
            sequence = conn.execute(
                sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": quote(conn, table["name"]), "column": column},
            ).scalar()
            if sequence:
                conn.execute(
                    sa.text(
                        f"SELECT setval(:seq, COALESCE((SELECT MAX({quote(conn, column)}) FROM "
                        f"{quote(conn, table['name'])}), 0) + 1, false)"
                    ),
                    {"seq": sequence},
                )
