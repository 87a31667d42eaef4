"""Write an import chunk's new rows in a few statements: rows, keys, links, audit.

One chunk is one transaction (the importer commits it). Here its new rows go
in with one statement: on PostgreSQL an executemany of rows whose ids were
taken from the sequence at once, on SQLite a multi-row INSERT ... RETURNING id
(`sort_by_parameter_order`), on MariaDB >= 10.5 one multi-VALUES INSERT ...
RETURNING, their data-subject keys with one executemany (the keys are
made in Python first, so the sealed values are sealed under the record's own
key as `app.privacy.sealing` does for an ORM insert), their many-to-many links
with one executemany, and their audit entries are built from the values
(`app.audit.bulk`) and chained once at commit. A new row has no children, so
its own rollups are not recomputed (`rollups.before_bulk_insert` gives it the
empty aggregates and the classified values they lead to); the parents the
rows point at are recomputed once per chunk, at commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from app.audit.bulk import AUDITED, stage_creates
from app.privacy.keys import _remember, is_token, seal
from app.privacy.lookup import index_values
from app.records import rollups
from app.schema.spec import EntitySpec

# the audit entries and the rollups of these statements are the writer's own (below)
OPTIONS = {AUDITED: True, rollups.RULES: True}


def _new_keys(count: int) -> list[tuple[str, str]]:
    """Make `count` subject keys in Python: (key id, wrapped key); cached for sealing."""
    from app.security.encryption import cipher

    wrap = cipher()
    made = []
    for _ in range(count):
        raw = Fernet.generate_key()
        key_id = uuid.uuid4().hex
        _remember(key_id, Fernet(raw))
        made.append((key_id, wrap.encrypt(raw).decode("ascii")))
    return made


def seal_rows(entity: EntitySpec, rows: list[dict[str, Any]]
              ) -> tuple[list[str | None], list[dict[str, str]], list[tuple[str, str]]]:
    """Give each row with clear sealed values a new key; mark the values with it.

    Returns each row's key id (or None), the clear text of its sealed fields (for
    the audit diff), and the keys made (id, wrapped) to store once the ids are known.
    The rows get the sealed tokens themselves (one encryption per value: the
    `create` audit entry of a field the log also seals reuses the row's token).
    """
    names = [f.name for f in entity.sealed_fields]
    keys: list[str | None] = [None] * len(rows)
    clear: list[dict[str, str]] = [{} for _ in rows]
    if not names:
        return keys, clear, []
    for row in rows:  # the blind indexes, from the clear text (a token keeps its own)
        row.update(index_values(entity, row))
    needing = [i for i, row in enumerate(rows)
               if any(isinstance(row.get(n), str) and row[n] != "" and not is_token(row[n])
                      for n in names)]
    made = _new_keys(len(needing))
    for i, (key_id, _) in zip(needing, made, strict=True):
        keys[i] = key_id
        for n in names:
            value = rows[i].get(n)
            if isinstance(value, str) and value != "" and not is_token(value):
                clear[i][n] = str(value)
                # sealed here, not when bound: the audit entry keeps this same token
                rows[i][n] = seal(key_id, value)
    return keys, clear, made


def insert_returning(session: Session, table: sa.Table, rows: list[dict[str, Any]]) -> list[Any]:
    """INSERT the rows; return their ids in the rows' order, in as few statements as the
    dialect allows."""
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        # The ids from the table's sequence, then a plain executemany: psycopg sends it
        # as one prepared statement in a pipeline, where a multi-VALUES INSERT ...
        # RETURNING of a chunk is a statement of ~20,000 placeholders psycopg parses.
        ids = list(session.execute(
            sa.select(sa.func.nextval(sa.func.pg_get_serial_sequence(table.name, "id")))
            .select_from(sa.func.generate_series(1, len(rows)))).scalars())
        session.execute(sa.insert(table), [dict(row, id=record_id)
                                           for row, record_id in zip(rows, ids, strict=True)],
                        execution_options=OPTIONS)
        return ids
    if getattr(dialect, "insert_executemany_returning_sort_by_parameter_order", False):
        stmt = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(session.execute(stmt, rows, execution_options=OPTIONS).scalars())
    if getattr(dialect, "insert_returning", False) and dialect.name in ("mysql", "mariadb"):
        # MariaDB returns the rows of one multi-VALUES INSERT in the order given.
        columns = list(rows[0])
        if all(list(r) == columns for r in rows):
            stmt = sa.insert(table).values(rows).returning(table.c.id)
            return list(session.execute(stmt, execution_options=OPTIONS).scalars())
    return [session.execute(sa.insert(table).values(**row), execution_options=OPTIONS)
            .inserted_primary_key[0] for row in rows]


def insert_chunk(session: Session, entity: EntitySpec, table: sa.Table, m2m: dict[str, sa.Table],
                 rows: list[dict[str, Any]], links: Sequence[dict[str, list[int]]]) -> list[Any]:
    """Insert new rows with their keys, links and audit entries; return their ids."""
    if not rows:
        return []
    # copies: a chunk written again (rows outside the user's reach dropped, after a
    # rollback) must seal its values anew, under keys that exist
    rows = [dict(row) for row in rows]
    settled = rollups.before_bulk_insert(session, entity.name, rows)
    keys, clear, made = seal_rows(entity, rows)
    ids = insert_returning(session, table, rows)
    rollups.after_bulk_insert(session, entity.name, rows, ids, settled)
    conn = session.connection()
    if made:
        key_table = _key_table()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        owner = {key_id: record_id for key_id, record_id in zip(keys, ids, strict=True) if key_id}
        conn.execute(sa.insert(key_table), [
            {"id": key_id, "entity": entity.name, "record_id": str(owner[key_id]),
             "wrapped": wrapped, "created_at": now} for key_id, wrapped in made])
    for name, assoc in m2m.items():
        left, right = list(assoc.c)
        pairs = [{left.name: record_id, right.name: target}
                 for record_id, row_links in zip(ids, links, strict=True)
                 for target in row_links.get(name, ())]
        if pairs:
            session.execute(sa.insert(assoc), pairs, execution_options=OPTIONS)
    stage_creates(session, entity.name, rows, ids, links, keys, clear)
    return ids


def _key_table() -> sa.Table:
    from app.state import state

    return state().models.system["subject_key"]
