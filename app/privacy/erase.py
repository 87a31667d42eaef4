"""Erasure (数据销毁): delete or anonymise a data subject and destroy its key, in one transaction.

`RecordService.erase` calls `erase_record`; the CLI (`schemadesk erase`), the
record page's button, the API (`POST /api/v1/<entity>/<id>/erase`) and the
retention runs all come here. What it does, for the record and for each
child that is a data subject too and is deleted with it (a relation with
`on_delete: cascade`, e.g. a customer's contacts):

1. anonymise (sensitive and sealed fields cleared, title `已销毁 #id`) or delete
   it, as `subject.erase` (or the retention rule) says;
2. destroy its keys: the record's key, and any key its stored values or its
   audit diffs name (bulk writes make one per row), so every copy of the
   sealed values — table, audit log, earlier backups — is unreadable;
3. write a tombstone (`subject_erasure`), kept by restores, and an `erase`
   audit entry (who, when, entity, id; no personal values: the writes of the
   erasure itself log which fields changed, not their values);
4. after the commit, remove the exports of the entity kept on the server.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from app.audit import record_event
from app.i18n import N_, gettext
from app.privacy.keys import forget, key_id_of
from app.privacy.sealing import ERASING
from app.schema.spec import SEALABLE_TYPES, EntitySpec
from app.state import state

MODES = ("anonymise", "delete")


def erased_title(record_id: Any) -> str:
    """The title an anonymised record keeps, in the schema's language (stored data)."""
    word = "已销毁" if state().spec.default_locale == "zh" else "Erased"
    return f"{word} #{record_id}"


def subject_children(entity: EntitySpec) -> list[tuple[EntitySpec, Any]]:
    """(child entity, relation field) of the subjects deleted with a record of `entity`."""
    return [(child, f) for child in state().spec.entities if child.subject is not None
            for f in child.fields
            if f.is_relation and not f.is_many and f.to == entity.name
            and f.on_delete == "cascade"]


def _collect(session: Any, entity: EntitySpec, obj: Any, mode: str,
             found: list[tuple[EntitySpec, Any, str]], seen: set[tuple[str, Any]]) -> None:
    if (entity.name, obj.id) in seen:
        return
    seen.add((entity.name, obj.id))
    found.append((entity, obj, mode))
    models = state().models
    for child, f in subject_children(entity):
        cls = models.model(child.name)
        for item in session.query(cls).filter(getattr(cls, f.column_name) == obj.id).all():
            # The database deletes the children of a deleted record whatever they declare.
            child_mode = "delete" if mode == "delete" else child.subject.erase  # type: ignore
            _collect(session, child, item, child_mode, found, seen)


def key_ids(conn: Any, entity: EntitySpec, record_id: Any) -> set[str]:
    """Every key that seals a value of this record: its own, its row's, its audit diffs'."""
    st = state()
    keys = st.models.system["subject_key"]
    found = set(conn.execute(sa.select(keys.c.id).where(
        keys.c.entity == entity.name, keys.c.record_id == str(record_id))).scalars())
    names = [f.name for f in entity.sealed_fields]
    if names:
        raw = sa.table(entity.name, sa.column("id"), *(sa.column(n, sa.Text) for n in names))
        row = conn.execute(sa.select(*(raw.c[n] for n in names)).where(
            raw.c.id == record_id)).first()
        found |= {k for k in (key_id_of(v) for v in (row or ()) if v) if k}
    log = st.models.system["audit_log"]
    for (changes,) in conn.execute(sa.select(log.c.changes).where(
            log.c.entity == entity.name, log.c.record_id == str(record_id),
            log.c.changes.is_not(None))):
        found |= _keys_in_diff(changes)
    return found


def _keys_in_diff(changes: str) -> set[str]:
    try:
        diff = json.loads(changes)
    except ValueError:
        return set()
    found = set()
    for change in diff.values() if isinstance(diff, dict) else ():
        if isinstance(change, dict) and change.get("sealed"):
            for side in ("before", "after"):
                key = key_id_of(change.get(side) or "")
                if key:
                    found.add(key)
    return found


def anonymise(entity: EntitySpec, obj: Any) -> None:
    """Clear the sensitive and sealed values of `obj`; its title becomes `已销毁 #id`."""
    sealed = {f.name for f in entity.sealed_fields}
    for f in entity.fields:
        if not (f.sensitive or f.name in sealed) or f.is_many or f.type == "user":
            continue
        if not f.required:
            setattr(obj, f.name, None)
        elif f.type in SEALABLE_TYPES:
            setattr(obj, f.name, "")
    if entity.title and entity.has_field(entity.title):
        title = entity.field(entity.title)
        if title.type in SEALABLE_TYPES:
            text = erased_title(obj.id)
            setattr(obj, title.name, text[: title.length] if title.length else text)


def erase_record(service: Any, obj: Any, rule: str | None = None,
                 mode: str | None = None) -> dict[str, Any]:
    """Erase `obj` (reached through `service`) and its subject children; return what was done."""
    from app.records.service import Invalid

    entity: EntitySpec = service.entity
    if entity.subject is None and rule is None:
        raise Invalid(gettext(N_("%(entity)s records are not data subjects; they cannot be "
                                 "erased, only deleted."), entity=entity.name))
    mode = mode or entity.subject.erase  # type: ignore[union-attr]
    service.require("delete" if mode == "delete" else "update")
    session = service.session
    found: list[tuple[EntitySpec, Any, str]] = []
    _collect(session, entity, obj, mode, found, set())
    conn = session.connection()
    keys: set[str] = set()
    for e, o, _ in found:
        keys |= key_ids(conn, e, o.id)
    erasing = session.info.setdefault(ERASING, set())
    erasing.update((e.name, str(o.id)) for e, o, _ in found)
    ids = [(e.name, o.id, m) for e, o, m in found]
    try:
        _write(session, found, mode, obj, entity)
        _destroy(session.connection(), keys)
        _tombstones(session, ids, rule, entity.name, obj.id)
        session.commit()
    except sa.exc.IntegrityError:
        session.rollback()
        raise Invalid(gettext(N_("This record cannot be erased: other records still refer "
                                 "to it. Remove or reassign them first."))) from None
    except Exception:
        session.rollback()
        raise
    finally:
        session.info.pop(ERASING, None)
    forget(keys)
    removed = remove_exports({name for name, _, _ in ids})
    return {"entity": entity.name, "id": ids[0][1], "mode": mode, "keys_destroyed": len(keys),
            "erased": [{"entity": n, "id": i, "mode": m} for n, i, m in ids],
            "exports_removed": removed,
            "title": erased_title(ids[0][1]) if mode == "anonymise" else None,
            "audit_hash": erase_entry_hash(entity.name, ids[0][1])}


def _write(session: Any, found: list[tuple[EntitySpec, Any, str]], mode: str, root: Any,
           entity: EntitySpec) -> None:
    if mode == "delete":
        session.delete(root)  # the database deletes the cascading children with it
    else:
        for e, o, m in found:
            if m == "delete":
                session.delete(o)
            else:
                anonymise(e, o)
    session.flush()


def _destroy(conn: Any, keys: set[str]) -> None:
    if keys:
        table = state().models.system["subject_key"]
        conn.execute(sa.delete(table).where(table.c.id.in_(sorted(keys))))


def _tombstones(session: Any, ids: list[tuple[str, Any, str]], rule: str | None,
                root_entity: str, root_id: Any) -> None:
    from app.audit.capture import acting_actor

    table = state().models.system["subject_erasure"]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    actor = acting_actor()
    session.connection().execute(sa.insert(table), [
        {"entity": name, "record_id": str(rid), "mode": m, "erased_at": now,
         "actor_name": actor.name, "rule": rule} for name, rid, m in ids])
    for name, rid, m in ids:
        detail: dict[str, Any] = {"mode": m}
        if rule:
            detail["rule"] = rule
        if (name, rid) != (root_entity, root_id):
            detail["with"] = {"entity": root_entity, "id": root_id}
        record_event("erase", entity=name, record_id=rid, title=None, detail=detail,
                     session=session)


def erase_entry_hash(entity: str, record_id: Any) -> str | None:
    """The hash of the newest `erase` audit entry of a record."""
    log = state().models.system["audit_log"]
    with state().db.engine.connect() as conn:
        return conn.execute(sa.select(log.c.hash).where(
            log.c.action == "erase", log.c.entity == entity,
            log.c.record_id == str(record_id)).order_by(log.c.id.desc()).limit(1)).scalar()


def remove_exports(entities: set[str]) -> int:
    """Delete the exports of `entities` kept on the server; return how many files."""
    from flask import current_app

    from app.io.jobs import export_dir

    if not current_app.config.get("UPLOAD_DIR"):
        return 0
    removed = 0
    for path in export_dir().iterdir():
        if path.is_file() and any(path.name.startswith(f"{name}-") for name in entities):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def erased(entity: str, record_id: Any) -> bool:
    """True when a record of `entity` was erased (a tombstone exists)."""
    table = state().models.system["subject_erasure"]
    with state().db.engine.connect() as conn:
        return conn.execute(sa.select(table.c.id).where(
            table.c.entity == entity, table.c.record_id == str(record_id)).limit(1)
        ).first() is not None
