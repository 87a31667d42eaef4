"""A restore never brings erased data back: tombstones survive it and are applied again.

Like the audit log (app/backup/audit_log.py), `subject_erasure` is read before
the restore replaces the tables and put back after: the tombstones the target
had and those in the backup are both kept. Then, for every tombstone, the keys
that sealed the record's values are destroyed again and the restored row is
deleted or anonymised again, in the restore's transaction, before foreign keys
are checked. `subject_key` is by then the target's own key store, put back by
`app.privacy.keystore` (backups do not carry keys), plus the keys a backup
taken before that change still held: the ones of erased records go here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from app.state import state

COLUMNS = ("entity", "record_id", "mode", "erased_at", "actor_name", "rule")


def set_aside(conn: Connection) -> list[dict[str, Any]]:
    """The target's tombstones (none when the table does not exist yet)."""
    if not sa.inspect(conn).has_table("subject_erasure"):
        return []
    table = state().models.system["subject_erasure"]
    return [dict(r) for r in conn.execute(
        sa.select(*(table.c[c] for c in COLUMNS))).mappings()]


def put_back(conn: Connection, kept: list[dict[str, Any]]) -> int:
    """Keep the tombstones, destroy their keys again, erase their rows again; return how many."""
    from app.privacy.erase import key_ids

    st = state()
    if conn.dialect.name == "sqlite":
        # The restored rows are rewritten below: zero the space the old cells leave.
        conn.exec_driver_sql("PRAGMA secure_delete=ON")
    table, keys = st.models.system["subject_erasure"], st.models.system["subject_key"]
    present = {(r.entity, r.record_id) for r in conn.execute(
        sa.select(table.c.entity, table.c.record_id))}
    missing = [r for r in kept if (r["entity"], r["record_id"]) not in present]
    if missing:
        conn.execute(sa.insert(table), missing)
    tombstones = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    names = {e.name for e in st.spec.entities}
    for t in tombstones:
        if t["entity"] not in names:
            continue
        entity = st.spec.entity(t["entity"])
        record_id = _int(t["record_id"])
        found = key_ids(conn, entity, record_id)
        if found:
            conn.execute(sa.delete(keys).where(keys.c.id.in_(sorted(found))))
        if t["mode"] == "delete":
            delete_rows(conn, entity.name, [record_id])
        else:
            anonymise_row(conn, entity.name, record_id)
    return len(tombstones)


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def anonymise_row(conn: Connection, entity_name: str, record_id: Any) -> None:
    """Clear a restored row's sensitive and sealed values; its title becomes `已销毁 #id`."""
    from app.privacy.erase import erased_title
    from app.privacy.lookup import column_name
    from app.schema.spec import SEALABLE_TYPES

    entity = state().spec.entity(entity_name)
    sealed = {f.name for f in entity.sealed_fields}
    values: dict[str, Any] = {}
    for f in entity.fields:
        if (f.sensitive or f.name in sealed) and not f.is_relation and f.type != "user":
            if not f.required:
                values[f.name] = None
            elif f.type in SEALABLE_TYPES:
                values[f.name] = ""
    values.update({column_name(f.name): None for f in entity.blind_fields})
    if entity.title and entity.has_field(entity.title) and \
            entity.field(entity.title).type in SEALABLE_TYPES:
        values[entity.title] = erased_title(record_id)
    if values:
        raw = sa.table(entity_name, sa.column("id"), *(sa.column(n) for n in values))
        conn.execute(sa.update(raw).where(raw.c.id == record_id).values(**values))


def delete_rows(conn: Connection, entity_name: str, ids: list[Any]) -> None:
    """Delete rows and what the schema cascades to (the restore runs without FK actions)."""
    if not ids:
        return
    st = state()
    for child in st.spec.entities:
        for f in child.fields:
            if not (f.is_relation and not f.is_many and f.to == entity_name):
                continue
            raw = sa.table(child.name, sa.column("id"), sa.column(f.column_name))
            if f.on_delete == "cascade":
                child_ids = list(conn.execute(sa.select(raw.c.id).where(
                    raw.c[f.column_name].in_(ids))).scalars())
                delete_rows(conn, child.name, child_ids)
            else:
                conn.execute(sa.update(raw).where(raw.c[f.column_name].in_(ids))
                             .values({f.column_name: None}))
    for (owner, _name), assoc in st.models.m2m_tables.items():
        left, right = list(assoc.c)
        if owner == entity_name:
            conn.execute(sa.delete(assoc).where(left.in_(ids)))
        if right.name == f"{entity_name}_id" or any(
                fk.column.table.name == entity_name for fk in right.foreign_keys):
            conn.execute(sa.delete(assoc).where(right.in_(ids)))
    raw = sa.table(entity_name, sa.column("id"))
    conn.execute(sa.delete(raw).where(raw.c.id.in_(ids)))
