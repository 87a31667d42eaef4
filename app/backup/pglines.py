"""PostgreSQL writes and reads the backup's canonical lines itself.

A backup line is a JSON array of a row's values in the canonical form of
`app.backup.format` (`row_encoder`). At a million rows, turning each row into
Python values and back into JSON costs several times what PostgreSQL needs to
read the table; so where every column of a table has a type PostgreSQL can
render byte for byte as `row_encoder` would, the server renders the lines:

- backup and the read-back check after a restore: `COPY (SELECT '[' || … || ']')
  TO STDOUT` streams the finished lines; Python only joins, hashes and
  compresses them.
- restore: the file's lines go as they are into a temporary table with `COPY …
  FROM STDIN` (whole blocks, no per-row Python), and one `INSERT … SELECT`
  casts each value (the staged lines are parsed once, into `jsonb`) to its
  column's type.

The rendering (`render_sql`) is the contract: for each type tag it reproduces
`format.encoder` and `json.dumps(ensure_ascii=False, separators=(",", ":"))`
— strings through `to_json` (PostgreSQL escapes exactly the characters
Python's encoder does), decimals at the column's scale as strings, naive UTC
times in ISO form with microseconds only when non-zero, bytes in base64 without
line breaks. A column it cannot render exactly (floats, decimals without a
fixed scale, times with zones, unknown types) sends the whole table down the
generic path (`fastload.read_rows` and `row_encoder`). tests/backup/
test_pglines.py compares both renderings over generated values of every tag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from app.backup.engine import quote

BLOCK_ROWS = 4096  # lines per block the server sends (bounded memory)
STAGING = "sd_restore_lines"

# pg_type OIDs
_INTS = {20, 21, 23}  # int8, int2, int4
_TEXTS = {25, 1043, 114, 3802}  # text, varchar, json, jsonb (read as their text)
_BOOL, _NUMERIC, _TIMESTAMP, _DATE, _BYTEA = 16, 1700, 1114, 1082, 17


@dataclass(frozen=True)
class Column:
    """A column as PostgreSQL has it: name, type OID, typmod and `format_type` text."""

    name: str
    oid: int
    typmod: int
    type_sql: str
    is_enum: bool


def columns_of(conn: Connection, table: str) -> dict[str, Column]:
    """The table's columns by name, with their PostgreSQL types."""
    rows = conn.exec_driver_sql(
        "SELECT a.attname, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod), "
        "t.typtype = 'e' FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = %(t)s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
        {"t": quote(conn, table)},
    ).fetchall()
    return {r[0]: Column(r[0], int(r[1]), int(r[2]), r[3], bool(r[4])) for r in rows}


def _numeric_scale(typmod: int) -> int | None:
    return None if typmod < 4 else (typmod - 4) & 0xFFFF


def _render_one(col: Column, tag: str, ref: str) -> str | None:
    """SQL rendering `ref` as the canonical JSON token of `tag`, or None if not exact."""
    if tag == "int" and col.oid in _INTS:
        return f"{ref}::text"
    if tag == "bool" and col.oid == _BOOL:
        return f"CASE WHEN {ref} THEN 'true' WHEN NOT {ref} THEN 'false' END"
    if tag in ("str", "text", "json") and (col.oid in _TEXTS or col.is_enum):
        return f"to_json({ref}::text)::text"
    if tag.startswith("decimal:") and col.oid == _NUMERIC:
        scale = tag.split(":")[2]
        if scale and _numeric_scale(col.typmod) == int(scale):
            return f"'\"' || {ref}::text || '\"'"
        return None
    if tag == "datetime" and col.oid == _TIMESTAMP:
        return (f"'\"' || to_char({ref}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
                f"date_part('microseconds', {ref})::bigint % 1000000 = 0 THEN '' "
                f"ELSE to_char({ref}, '.US') END || '\"'")
    if tag == "date" and col.oid == _DATE:
        return f"'\"' || to_char({ref}, 'YYYY-MM-DD') || '\"'"
    if tag == "bytes" and col.oid == _BYTEA:
        return f"'\"' || translate(encode({ref}, 'base64'), E'\\n', '') || '\"'"
    return None


def render_sql(conn: Connection, table: str, columns: list[tuple[str, str]],
               primary_key: list[str], found: dict[str, Column] | None = None) -> str | None:
    """`SELECT` of the table's canonical lines in primary-key order, or None if not exact."""
    if conn.exec_driver_sql("SHOW server_encoding").scalar() != "UTF8":
        return None
    found = found if found is not None else columns_of(conn, table)
    parts = []
    for name, tag in columns:
        col = found.get(name)
        expr = _render_one(col, tag, quote(conn, name)) if col else None
        if expr is None:
            return None
        parts.append(f"COALESCE({expr}, 'null')")
    if not parts:
        return None
    order = ", ".join(quote(conn, c) for c in (primary_key or [c for c, _ in columns]))
    body = " || ',' || ".join(parts)
    # Blocks of BLOCK_ROWS lines, each one value: Python handles a block, not a row.
    return (f"SELECT string_agg(line, '' ORDER BY rn) FROM (SELECT '[' || {body} || E']\\n' "
            f"AS line, row_number() OVER (ORDER BY {order}) AS rn FROM {quote(conn, table)}) "
            f"AS numbered GROUP BY (rn - 1) / {BLOCK_ROWS} ORDER BY (rn - 1) / {BLOCK_ROWS}")


def lines(conn: Connection, select: str) -> Iterator[tuple[bytes, int]]:
    """Stream the blocks of lines `select` (from `render_sql`) gives: (block, lines in it)."""
    driver = conn.connection.driver_connection
    # CSV quotes each block whole and doubles its quotes, and escapes nothing else: the
    # block is the record without its outer quotes and final newline, quotes undoubled.
    with driver.cursor() as cur, \
            cur.copy(f"COPY ({select}) TO STDOUT (FORMAT csv, FORCE_QUOTE *)") as copy:
        for data in copy:
            block = bytes(data[1:-2]).replace(b'""', b'"')
            yield block, block.count(b"\n")


def digest(conn: Connection, select: str) -> tuple[int, str]:
    """(rows, SHA-256) of `select`'s lines, as a backup of the table would hash them."""
    sha = hashlib.sha256()
    rows = 0
    for block, count in lines(conn, select):
        sha.update(block)
        rows += count
    return rows, sha.hexdigest()


# --- restore ----------------------------------------------------------------


def _parse_one(col: Column, tag: str, index: int) -> str | None:
    """SQL turning element `index` of the line (`j`, jsonb) into the column's value."""
    text = f"(j->>{index})"
    if tag == "bytes" and col.oid == _BYTEA:
        return f"decode({text}, 'base64')"
    if tag == "datetime" and col.oid != _TIMESTAMP:
        return None  # with a zone: the generic path decides how a naive time is read
    if tag == "time" and col.oid != 1083:
        return None
    if tag == "float" and col.oid not in (700, 701):
        return None
    return f"CAST({text} AS {col.type_sql})"


def loader_sql(conn: Connection, table: str, columns: list[tuple[str, str]]) -> str | None:
    """`INSERT … SELECT` moving the staged lines into `table`, or None for the generic path."""
    if conn.exec_driver_sql("SHOW server_encoding").scalar() != "UTF8":
        return None
    found = columns_of(conn, table)
    values = []
    for index, (name, tag) in enumerate(columns):
        col = found.get(name)
        expr = _parse_one(col, tag, index) if col else None
        if expr is None:
            return None
        values.append(expr)
    names = ", ".join(quote(conn, c) for c, _ in columns)
    return (f"INSERT INTO {quote(conn, table)} ({names}) SELECT {', '.join(values)} "
            f"FROM {STAGING}")


def stage(conn: Connection, blocks: Iterable[bytes]) -> None:
    """Put the file's lines (blocks of whole lines) into the staging table, in order."""
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} "
        "(j jsonb NOT NULL) ON COMMIT DROP"
    )
    conn.exec_driver_sql(f"TRUNCATE {STAGING}")
    driver = conn.connection.driver_connection
    with driver.cursor() as cur, cur.copy(f"COPY {STAGING} (j) FROM STDIN") as copy:
        for block in blocks:
            copy.write(block.replace(b"\\", b"\\\\"))


def load(conn: Connection, insert: str) -> None:
    """Move the staged lines into their table; empty the staging table."""
    conn.exec_driver_sql(insert)
    conn.exec_driver_sql(f"TRUNCATE {STAGING}")

