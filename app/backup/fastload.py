"""The fast paths of backup and restore: bulk reads and writes in each engine's own way.

The portable file does not change (canonical JSON lines, see `app.backup.format`);
what changes is how rows leave and enter the database, because at a million
rows SQLAlchemy's per-row work and per-row index maintenance cost more than the
database's own:

- reading (backup, and the read-back check after a restore): PostgreSQL streams
  `COPY (SELECT … ORDER BY pk) TO STDOUT` through psycopg 3, typed by column
  OID so values arrive as Python objects without SQLAlchemy; other engines read
  through the driver's cursor, with SQLAlchemy's result processors applied only
  where the driver gives strings (SQLite's decimals and times).
- writing (restore): PostgreSQL loads with `COPY … FROM STDIN`; SQLite and
  MariaDB with the driver's executemany (PyMySQL turns it into multi-row
  INSERTs), MariaDB with `UNIQUE_CHECKS=0` and `FOREIGN_KEY_CHECKS=0`.
- secondary indexes (PostgreSQL, SQLite) are dropped before a table is loaded
  and created again after it, in the restore's transaction: one sorted build
  instead of a million index updates (and a trigram GIN index per search
  field on PostgreSQL). A unique index that no longer holds fails the restore.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from app.backup.engine import quote
from app.backup.format import sql_type

FETCH_ROWS = 5000
# PostgreSQL types read as their text (json stays the string it is stored as).
_AS_TEXT_OIDS = {114: 25, 3802: 25}  # json, jsonb -> text


def _order_by(conn: Connection, columns: list[str], primary_key: list[str]) -> str:
    return ", ".join(quote(conn, c) for c in (primary_key or columns))


def read_rows(
    conn: Connection, name: str, columns: list[tuple[str, str]], primary_key: list[str]
) -> Iterator[Any]:
    """Yield the table's rows (sequences of Python values) in primary-key order."""
    names = [c for c, _ in columns]
    select = (f"SELECT {', '.join(quote(conn, c) for c in names)} FROM {quote(conn, name)} "
              f"ORDER BY {_order_by(conn, names, primary_key)}")
    if conn.dialect.name == "postgresql":
        yield from _copy_out(conn, name, names, select)
        return
    processors = _result_processors(conn, columns)
    driver = conn.connection.driver_connection
    if conn.dialect.name == "mysql":  # unbuffered: a million rows never sit in memory
        import pymysql.cursors

        cursor = driver.cursor(pymysql.cursors.SSCursor)
    else:
        cursor = driver.cursor()
    try:
        cursor.execute(select)
        while batch := cursor.fetchmany(FETCH_ROWS):
            if not processors:
                yield from batch
                continue
            for row in batch:
                values = list(row)
                for i, proc in processors:
                    values[i] = proc(values[i])
                yield values
    finally:
        cursor.close()


def _result_processors(conn: Connection, columns: list[tuple[str, str]]) -> list[tuple[int, Any]]:
    dialect = conn.dialect
    found = []
    for i, (_, tag) in enumerate(columns):
        impl = sql_type(tag).dialect_impl(dialect)
        proc = impl.result_processor(dialect, None)
        if proc is not None:
            found.append((i, proc))
    return found


def _copy_out(conn: Connection, name: str, names: list[str], select: str) -> Iterator[Any]:
    """COPY TO STDOUT, typed by the columns' OIDs (psycopg's C loaders do the parsing)."""
    driver = conn.connection.driver_connection
    with driver.cursor() as cur:
        cur.execute(
            "SELECT a.attname, a.atttypid FROM pg_attribute a "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
            (quote(conn, name),),
        )
        oids = dict(cur.fetchall())
        types = [_AS_TEXT_OIDS.get(int(oids[n]), int(oids[n])) for n in names]
        with cur.copy(f"COPY ({select}) TO STDOUT") as copy:
            copy.set_types(types)
            yield from copy.rows()


# --- indexes ----------------------------------------------------------------


def secondary_indexes(conn: Connection, name: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the table's indexes that no constraint owns."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL", (name,)
        ).fetchall()
        return [(r[0], r[1]) for r in rows]
    if dialect == "postgresql":
        rows = conn.exec_driver_sql(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %(t)s::regclass AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
            {"t": quote(conn, name)},
        ).fetchall()
        return [(r[0], r[1]) for r in rows]
    return []  # MariaDB: DDL would commit the restore's transaction


def drop_indexes(conn: Connection, indexes: list[tuple[str, str]]) -> None:
    for index, _ in indexes:
        conn.exec_driver_sql(f"DROP INDEX {quote(conn, index)}")


def create_indexes(conn: Connection, indexes: list[tuple[str, str]]) -> None:
    for _, create in indexes:
        conn.exec_driver_sql(create)


# --- writing ----------------------------------------------------------------


def bulk_writer(
    conn: Connection, name: str, columns: list[list[str]]
) -> tuple[Callable[[Iterable[list[Any]]], None], Callable[[BaseException | None], None]]:
    """Return (write a batch of decoded rows, finish) for loading the table."""
    if conn.dialect.name == "postgresql":
        return _copy_in(conn, name, [c for c, _ in columns])
    from app.backup.restore import _inserter  # the executemany path

    insert, to_params = _inserter(conn, name, columns)
    cursor = conn.connection.driver_connection.cursor()

    def write(batch: Iterable[list[Any]]) -> None:
        cursor.executemany(insert, [to_params(v) for v in batch])

    def finish(_error: BaseException | None) -> None:
        cursor.close()

    return write, finish


def _copy_in(conn: Connection, name: str, names: list[str]) -> tuple[Any, Any]:
    """COPY FROM STDIN: psycopg adapts each value (Decimal, datetime, bytes…) in C."""
    cursor = conn.connection.driver_connection.cursor()
    cols = ", ".join(quote(conn, c) for c in names)
    manager = cursor.copy(f"COPY {quote(conn, name)} ({cols}) FROM STDIN")
    copy = manager.__enter__()

    def write(batch: Iterable[list[Any]]) -> None:
        for values in batch:
            copy.write_row(values)

    def finish(error: BaseException | None) -> None:
        try:  # an error ends the COPY with CopyFail; the transaction is rolled back anyway
            manager.__exit__(type(error) if error else None, error,
                             error.__traceback__ if error else None)
        finally:
            cursor.close()

    return write, finish


def relax_checks(conn: Connection) -> None:
    """MariaDB: no unique or foreign-key checks while loading (checked once afterwards)."""
    if conn.dialect.name == "mysql":
        conn.exec_driver_sql("SET UNIQUE_CHECKS=0")
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")


def restore_checks(conn: Connection) -> None:
    if conn.dialect.name == "mysql":
        conn.exec_driver_sql("SET UNIQUE_CHECKS=1")
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=1")


def check_foreign_keys(conn: Connection, names: list[str]) -> None:
    """Raise if a loaded row refers to a missing one (MariaDB and PostgreSQL load unchecked)."""
    if conn.dialect.name == "sqlite":
        return  # engine.check_foreign_keys runs PRAGMA foreign_key_check
    inspector = sa.inspect(conn)
    for name in names:
        for fk in inspector.get_foreign_keys(name):
            cols, ref = fk["constrained_columns"], fk["referred_columns"]
            if not cols or not fk.get("referred_table"):
                continue
            on = " AND ".join(f"p.{quote(conn, r)} = c.{quote(conn, c)}"
                              for c, r in zip(cols, ref, strict=True))
            present = " AND ".join(f"c.{quote(conn, c)} IS NOT NULL" for c in cols)
            broken = conn.exec_driver_sql(
                f"SELECT COUNT(*) FROM {quote(conn, name)} c WHERE {present} AND NOT EXISTS "
                f"(SELECT 1 FROM {quote(conn, fk['referred_table'])} p WHERE {on})"
            ).scalar()
            if broken:
                raise sa.exc.IntegrityError(
                    f"{broken} row(s) of {name} refer to missing rows of "
                    f"{fk['referred_table']}", None, Exception("foreign key"))
