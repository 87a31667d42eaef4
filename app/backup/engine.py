"""Engines of our own for backup and restore, and what they need to know of a database.

Backups read through a snapshot and restores write in one transaction, so both
use a dedicated engine rather than the app's pool: on SQLite that engine turns
off pysqlite's own transaction handling and emits BEGIN itself, which makes DDL
transactional (see SQLAlchemy's "pysqlite serializable isolation" recipe).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from app.state import state

# Where a restore keeps the current audit log while it replaces every table.
AUDIT_KEEP_TABLE = "schemadesk_restore_audit"
# Where a restore keeps the target's subject keys while it replaces every table.
KEYS_KEEP_TABLE = "schemadesk_restore_keys"
# The data subjects' keys (加密粉碎): a backup never carries them, so erasing a
# record (deleting its key) reaches every backup taken before; a restore keeps the
# target's own (see `app.privacy.keystore`), `schemadesk keys export` saves them.
KEY_TABLES = ("subject_key", KEYS_KEEP_TABLE)
# Sign-in sessions are not data: a backup never carries them, and a restore (which
# recreates every table) ends them all, so no logged-out session comes back.
SKIPPED_TABLES = ("alembic_version", AUDIT_KEEP_TABLE, "user_session", *KEY_TABLES)


def app_url() -> str:
    """Return the URL of the current app's database, password included."""
    return state().db.engine.url.render_as_string(hide_password=False)


def dedicated_engine(url: str | None = None, foreign_keys: bool = True) -> Engine:
    """Return a fresh engine on `url` (the app's database by default), without pooling.

    `foreign_keys=False` matters on SQLite only: Alembic's batch mode rebuilds a
    table by dropping it, and with foreign keys on that drop would cascade into
    the child tables. Whoever turns them off runs `check_foreign_keys` before
    committing.
    """
    url = url or app_url()
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    engine = sa.create_engine(url, poolclass=NullPool)
    if engine.dialect.name == "mysql":
        with engine.connect():
            pass
        engine.dialect.supports_sequences = False
    return engine


def release_app_connections() -> None:
    """Let go of the app's pooled connections, so DDL on the database never waits on them."""
    st = state()
    st.db.session.remove()
    st.db.engine.dispose()


def snapshot(engine: Engine) -> Connection:
    """Return a connection whose reads all see one consistent state of the database."""
    conn = engine.connect()
    if engine.dialect.name in ("postgresql", "mysql"):
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    conn.begin()
    return conn


def quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def table_names(conn: Connection) -> list[str]:
    """Every table of the database but Alembic's, parents before children."""
    inspector = sa.inspect(conn)
    present = [n for n in inspector.get_table_names() if n not in SKIPPED_TABLES]
    order = [t.name for t in state().models.metadata.sorted_tables]
    known = [n for n in order if n in present]
    return known + sorted(n for n in present if n not in order)


def row_counts(conn: Connection) -> dict[str, int]:
    """Rows per table (Alembic's excepted) of the database behind `conn`."""
    return {
        name: conn.execute(sa.text(f"SELECT COUNT(*) FROM {quote(conn, name)}")).scalar_one()
        for name in table_names(conn)
    }


def drop_all_tables(conn: Connection, keep: tuple[str, ...] = ()) -> None:
    """Drop every table of the database but `keep`, Alembic's included, in `conn`'s transaction."""
    inspector = sa.inspect(conn)
    names = [n for n in inspector.get_table_names() if n not in keep]
    dialect = conn.dialect.name
    if dialect == "mysql":
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
    if dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
    metadata = sa.MetaData()
    metadata.reflect(conn)
    for table in reversed(metadata.sorted_tables):
        if table.name in keep:
            continue
        suffix = " CASCADE" if dialect == "postgresql" else ""
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(conn, table.name)}{suffix}")
    for name in names:  # anything reflection could not order
        if name not in metadata.tables:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(conn, name)}")
    if dialect == "mysql":
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=1")


def check_foreign_keys(conn: Connection) -> None:
    """On SQLite with foreign keys off, raise if any row refers to a missing one."""
    if conn.dialect.name != "sqlite":
        return
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        table, rowid, parent = broken[0][0], broken[0][1], broken[0][2]
        raise sa.exc.IntegrityError(
            f"PRAGMA foreign_key_check: {len(broken)} row(s) refer to missing rows "
            f"(first: {table} rowid {rowid} -> {parent})", None, Exception("foreign key")
        )
