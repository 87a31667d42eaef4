"""Take a backup: every table of the app's database, streamed from one snapshot."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from flask import current_app
from sqlalchemy.engine import Connection

from app.backup import pglines
from app.backup.engine import dedicated_engine, snapshot, table_names
from app.backup.fastload import read_rows
from app.backup.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    SUFFIX,
    BackupWriter,
    TableWriter,
    row_encoder,
    sql_type,
    type_tag,
)
from app.backup.signature import instance_keys
from app.state import state


@dataclass(frozen=True)
class TableLayout:
    """How one table is written: its columns (name, type tag) and primary key."""

    name: str
    columns: list[tuple[str, str]]
    primary_key: list[str]

    def select(self) -> Any:
        """The query reading the table's rows in primary-key order."""
        table = sa.table(self.name, *[sa.column(c, sql_type(t)) for c, t in self.columns])
        order = self.primary_key or [c for c, _ in self.columns]
        return sa.select(*table.c).order_by(*[table.c[c] for c in order])


def table_layouts(conn: Connection) -> list[TableLayout]:
    """The layout of every table in the database, typed by the app's metadata where known."""
    inspector = sa.inspect(conn)
    metadata = state().models.metadata
    layouts = []
    for name in table_names(conn):
        known = metadata.tables.get(name)
        columns = []
        for col in inspector.get_columns(name):
            source = known.c[col["name"]].type if known is not None and col["name"] in known.c \
                else col["type"]
            columns.append((col["name"], type_tag(source)))
        pk = inspector.get_pk_constraint(name).get("constrained_columns") or []
        layouts.append(TableLayout(name, columns, list(pk)))
    return layouts


def write_rows(conn: Connection, layout: TableLayout, out: TableWriter) -> None:
    """Write the table's canonical lines: rendered by PostgreSQL where it can, else here."""
    if conn.dialect.name == "postgresql":
        select = pglines.render_sql(conn, layout.name, layout.columns, layout.primary_key)
        if select is not None:
            for block, count in pglines.lines(conn, select):
                out.write_block(block, count)
            return
    encode = row_encoder([t for _, t in layout.columns])
    for row in read_rows(conn, layout.name, layout.columns, layout.primary_key):
        out.write(encode(row))


def engine_name(engine: Any) -> str:
    """sqlite, postgresql, mariadb or mysql."""
    if engine.dialect.name == "mysql" and getattr(engine.dialect, "is_mariadb", False):
        return "mariadb"
    return engine.dialect.name


def app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("schemadesk")
    except PackageNotFoundError:
        return "0"


def backup_dir() -> Path:
    """Return BACKUP_DIR, created if missing."""
    path = Path(current_app.config["BACKUP_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_backup_path(directory: Path | None = None) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{state().spec.stem}-{stamp}-{secrets.token_hex(3)}{SUFFIX}"
    return (directory or backup_dir()) / name


def create_backup(
    path: str | Path | None = None,
    *,
    note: str = "",
    keys: str | list[str] | None = None,
    url: str | None = None,
) -> Path:
    """Write a backup of the app's database (or `url`) to `path`; return the file's path.

    The file appears only when complete (written to `<path>.part`, then renamed),
    so a crash never leaves a half backup that looks whole.
    """
    started = time.perf_counter()
    target = Path(path) if path else new_backup_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    keys = keys if keys is not None else current_app.config.get("BACKUP_ENCRYPTION_KEY")
    engine = dedicated_engine(url)
    partial = target.with_name(target.name + ".part")
    try:
        conn = snapshot(engine)
        try:
            with open(partial, "wb") as fh:
                writer = BackupWriter(fh, keys, sign_with=(instance_keys() or [None])[0])
                revision = MigrationContext.configure(conn).get_current_revision()
                tables = []
                for layout in table_layouts(conn):
                    member, out = writer.table(layout.name)
                    write_rows(conn, layout, out)
                    tables.append(
                        {
                            "name": layout.name,
                            "member": member,
                            "columns": [list(c) for c in layout.columns],
                            "primary_key": layout.primary_key,
                            **out.close(),
                        }
                    )
                spec = state().spec
                writer.finish(
                    {
                        "format": FORMAT_NAME,
                        "format_version": FORMAT_VERSION,
                        "app_version": app_version(),
                        "schema": {"name": spec.stem, "digest": spec.digest},
                        "revision": revision,
                        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        "engine": engine_name(engine),
                        "server_version": ".".join(
                            str(p) for p in (engine.dialect.server_version_info or ())
                        ),
                        "note": note,
                        "tables": tables,
                        "total_rows": sum(t["rows"] for t in tables),
                        "seconds": round(time.perf_counter() - started, 3),
                    }
                )
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            conn.rollback()
            conn.close()
        os.replace(partial, target)
    finally:
        engine.dispose()
        if partial.exists():
            partial.unlink()
    return target

