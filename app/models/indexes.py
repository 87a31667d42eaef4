"""The indexes that keep lists, searches and dashboards fast at a million rows.

Two kinds, both derived from the schema:

- B-tree indexes on what lists filter, order and group by (portable, in the
  migrations like any index): `filters` and chart `group_by` columns one by
  one, and the default order as (order column, id) so "newest first, page 1"
  reads 20 index entries instead of sorting the table.
- PostgreSQL trigram (pg_trgm) GIN indexes on the `search` fields: the search
  box is `ILIKE '%text%'`, which no B-tree can serve. They exist only on
  PostgreSQL (`ddl_if`), so SQLite and MariaDB are untouched; Alembic's
  autogenerate leaves them out (`include_object`) and `ensure_search_indexes`
  creates what is missing after every upgrade (`migrations/env.py`), with the
  extension. Their names start with `TRGM_PREFIX`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Index, Table

from app.schema.spec import EntitySpec

TRGM_PREFIX = "trgm_"
# Column types a portable index can hold (MariaDB cannot index TEXT without a prefix).
_INDEXABLE = (sa.String, sa.Integer, sa.Numeric, sa.Boolean, sa.Date, sa.DateTime)


def _column(entity: EntitySpec, table: Table, name: str) -> Any | None:
    if name in table.c:
        return table.c[name]
    if entity.has_field(name):
        f = entity.field(name)
        if f.is_foreign_key and f.column_name in table.c:
            return table.c[f.column_name]
    return None


def _indexable(column: Any) -> bool:
    return column is not None and isinstance(column.type, _INDEXABLE) \
        and not isinstance(column.type, sa.Text)


def add_list_indexes(entity: EntitySpec, table: Table) -> None:
    """Index the entity's group-by and default-order columns, and its search fields (PG)."""
    indexed = {tuple(c.name for c in ix.columns) for ix in table.indexes}
    indexed |= {(c.name,) for c in table.columns if c.index or c.unique or c.primary_key}
    grouped = [c.group_by for c in entity.charts if c.group_by]
    for name in dict.fromkeys(grouped):
        column = _column(entity, table, name)
        if _indexable(column) and (column.name,) not in indexed:
            table.append_constraint(Index(f"ix_{table.name}_{column.name}", column))
            indexed.add((column.name,))
    order = entity.order[0].lstrip("-") if entity.order else "created_at"
    column = _column(entity, table, order)
    if _indexable(column) and column.name != "id" and (column.name, "id") not in indexed:
        table.append_constraint(
            Index(f"ix_{table.name}_{column.name}_id", column, table.c.id))
    for name in entity.search:
        if not entity.has_field(name) or entity.is_sealed(name):
            continue
        f = entity.field(name)
        if f.encrypted or f.is_relation or name not in table.c:
            continue
        index = Index(f"{TRGM_PREFIX}{table.name}_{name}"[:63], table.c[name],
                      postgresql_using="gin", postgresql_ops={name: "gin_trgm_ops"})
        table.append_constraint(index.ddl_if(dialect="postgresql"))


def is_search_index(obj: Any) -> bool:
    return isinstance(obj, Index) and bool(obj.name) and obj.name.startswith(TRGM_PREFIX)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool,
                   compare_to: Any) -> bool:
    """Alembic filter: trigram indexes are not diffed (`ensure_search_indexes` owns them)."""
    if type_ == "index" and name and name.startswith(TRGM_PREFIX):
        return False
    return True


def ensure_search_indexes(connection: Any, metadata: sa.MetaData) -> list[str]:
    """On PostgreSQL, create pg_trgm and the missing trigram indexes; return their names."""
    if connection.dialect.name != "postgresql":
        return []
    wanted = [ix for t in metadata.sorted_tables for ix in t.indexes if is_search_index(ix)]
    if not wanted:
        return []
    connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    existing = set(connection.execute(sa.text(
        "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'trgm\\_%'")).scalars())
    inspector = sa.inspect(connection)
    made = []
    for index in wanted:
        if index.name in existing or not inspector.has_table(index.table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(index.table.name)}
        if not {c.name for c in index.columns} <= present:
            continue  # a revision is being written before its upgrade: next time
        index.create(connection)
        made.append(index.name)
    return made


__all__ = ["TRGM_PREFIX", "add_list_indexes", "ensure_search_indexes", "include_object",
           "is_search_index"]
