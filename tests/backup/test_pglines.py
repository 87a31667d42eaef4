"""PostgreSQL renders a backup's canonical lines byte for byte as Python's `row_encoder` does.

The fast backup path (`app.backup.pglines`) lets the server write each line;
a single differing byte would make a backup taken on PostgreSQL fail its
read-back check when restored elsewhere (and the other way round). So: a table
with a column of every type the renderer claims, filled with generated and
edge-case values, rendered both ways and compared line by line; then loaded
back from the lines by the SQL loader and compared again.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.backup import pglines
from app.backup.fastload import read_rows
from app.backup.format import row_encoder
from tests.conftest import new_database

pytestmark = pytest.mark.services

COLUMNS = [
    ("id", "int", "bigint PRIMARY KEY"),
    ("small", "int", "smallint"),
    ("flag", "bool", "boolean"),
    ("name", "str", "varchar(300)"),
    ("body", "text", "text"),
    ("doc", "json", "json"),
    ("docb", "json", "jsonb"),
    ("amount", "decimal:12:2", "numeric(12, 2)"),
    ("rate", "decimal:18:6", "numeric(18, 6)"),
    ("at", "datetime", "timestamp without time zone"),
    ("day", "date", "date"),
    ("blob", "bytes", "bytea"),
]

EDGE_TEXTS = [
    "", " ", "plain", "引号\"与反斜杠\\", "tab\there", "new\nline\r\n", "\x01\x08\x0b\x0c\x1f\x7f",
    "emoji 😀 and 中文", "\u2028\u2029", "back\\slash\\\\double", "\\n literally", "'single'",
    "slash/es", "<script>", "\\.", "a\x00b".replace("\x00", ""), "ünïcödé", "\\u0041",
]


def _random_text(rng: random.Random) -> str:
    alphabet = "ab中文\"\\\n\t\r\x01\x1f/😀 ,[]{}:é\u2028"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))


def _rows(count: int) -> list[dict[str, object]]:
    rng = random.Random(20261124)
    rows = []
    for i in range(count):
        text = EDGE_TEXTS[i] if i < len(EDGE_TEXTS) else _random_text(rng)
        micro = rng.choice([0, 1, 500000, 999999, rng.randint(0, 999999)])
        rows.append({
            "id": i + 1 if i else -(2 ** 62),
            "small": rng.choice([None, 0, -32768, 32767, rng.randint(-100, 100)]),
            "flag": rng.choice([None, True, False]),
            "name": rng.choice([None, text]),
            "body": text,
            "doc": rng.choice([None, '{"a": [1, 2.5, "x\\"y"], "b": null}', "[]", '"中"']),
            "docb": rng.choice([None, '{"k": "v", "n": 10}', "[1,2]", "true"]),
            "amount": rng.choice([None, Decimal("0.00"), Decimal("-0.01"), Decimal("9999999999.99"),
                                  Decimal(rng.randint(-10 ** 9, 10 ** 9)) / 100]),
            "rate": rng.choice([None, Decimal("0.000001"), Decimal("100"), Decimal("-1.5")]),
            "at": rng.choice([None, dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59),
                              dt.datetime(2024, 2, 29, 12, 0, 0, micro),
                              dt.datetime(1969, 7, 20, 20, 17, 40, micro)]),
            "day": rng.choice([None, dt.date(1, 1, 1), dt.date(2024, 2, 29),
                               dt.date(9999, 12, 31)]),
            "blob": rng.choice([None, b"", bytes(range(256)), rng.randbytes(rng.randint(1, 200))]),
        })
    return rows


@pytest.fixture(scope="module")
def pg_engine(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    engine = sa.create_engine(new_database("postgresql", tmp_path_factory.mktemp("pglines")))
    cols = ", ".join(f'"{name}" {sql}' for name, _, sql in COLUMNS)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE every_type ({cols})")
        conn.exec_driver_sql(f"CREATE TABLE every_type_copy ({cols})")
        table = sa.table("every_type", *[sa.column(n) for n, _, _ in COLUMNS])
        conn.execute(sa.insert(table), _rows(600))
    yield engine
    engine.dispose()


LAYOUT = [(name, tag) for name, tag, _ in COLUMNS]


def unrenderable(conn: sa.Connection, table: str, columns: list[tuple[str, str]]) -> list:
    """The (column, tag, PostgreSQL type) that keep `table` on the generic path."""
    found = pglines.columns_of(conn, table)
    return [(n, t, found[n].type_sql if n in found else None) for n, t in columns
            if n not in found or pglines._render_one(found[n], t, n) is None]


def _python_lines(conn: sa.Connection, table: str) -> list[bytes]:
    encode = row_encoder([t for _, t in LAYOUT])
    return [encode(row) for row in read_rows(conn, table, LAYOUT, ["id"])]


def _server_lines(conn: sa.Connection, table: str) -> list[bytes]:
    select = pglines.render_sql(conn, table, LAYOUT, ["id"])
    assert select is not None, unrenderable(conn, table, LAYOUT)
    return b"".join(block for block, _ in pglines.lines(conn, select)).splitlines(keepends=True)


@pytest.mark.parametrize("block_rows", [4096, 7])
def test_server_renders_every_line_as_python_does(pg_engine: sa.Engine, block_rows: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pglines, "BLOCK_ROWS", block_rows)
    with pg_engine.connect() as conn:
        python, server = _python_lines(conn, "every_type"), _server_lines(conn, "every_type")
    assert len(python) == 600
    for expected, got in zip(python, server, strict=True):
        assert got == expected


def test_lines_load_back_to_the_same_rows(pg_engine: sa.Engine) -> None:
    with pg_engine.connect() as conn, conn.begin():
        original = _python_lines(conn, "every_type")
        insert = pglines.loader_sql(conn, "every_type_copy", LAYOUT)
        assert insert is not None
        blocks = [b"".join(original[i:i + 97]) for i in range(0, len(original), 97)]
        pglines.stage(conn, blocks)
        pglines.load(conn, insert)
        assert _python_lines(conn, "every_type_copy") == original
        select = pglines.render_sql(conn, "every_type_copy", LAYOUT, ["id"])
        rows, sha = pglines.digest(conn, select)
        import hashlib

        assert (rows, sha) == (len(original), hashlib.sha256(b"".join(original)).hexdigest())
        conn.rollback()


@pytest.mark.parametrize(("tag", "sql"), [
    ("float", "double precision"), ("decimal:12:", "numeric"), ("decimal:12:2", "numeric(12, 4)"),
    ("datetime", "timestamp with time zone"), ("time", "time"), ("str", "char(3)"),
])
def test_types_it_cannot_render_exactly_keep_the_generic_path(pg_engine: sa.Engine, tag: str,
                                                               sql: str) -> None:
    with pg_engine.connect() as conn, conn.begin():
        conn.exec_driver_sql(f"CREATE TABLE odd (id bigint PRIMARY KEY, v {sql})")
        layout = [("id", "int"), ("v", tag)]
        assert pglines.render_sql(conn, "odd", layout, ["id"]) is None
        shown = conn.exec_driver_sql(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            "'odd'::regclass AND attname = 'v'").scalar()
        assert unrenderable(conn, "odd", layout) == [("v", tag, shown)]
        conn.rollback()
