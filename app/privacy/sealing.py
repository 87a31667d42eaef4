"""Where sealed values get their key: ORM writes, bulk statements, audit diffs.

- ORM: `before_insert` makes the new record's key (linked to its id after the
  INSERT), `before_update` finds the record's key; the values bound for sealed
  columns carry the key id (`SealedStr`), so `SubjectText` stores them sealed.
- Bulk statements (the importer): the same, per parameter set, before the audit
  capture sees them.
- Audit diffs: `sealed_change` stores a sealed field's before/after as tokens
  under the record's key (the chain hashes ciphertext, so it verifies after the
  key is gone); while a record is erased its entries carry no values at all.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.privacy.keys import SealedStr, create_key, is_token, link_key, record_key, seal
from app.privacy.lookup import index_values
from app.schema.spec import EntitySpec

ERASING = "privacy_erasing"  # session.info: {(entity, record id)} being erased now
KEY_ATTR = "_sd_subject_key"


def _plain_values(entity: EntitySpec, values: dict[str, Any]) -> list[str]:
    return [f.name for f in entity.sealed_fields
            if isinstance(values.get(f.name), str) and values[f.name] != ""
            and not isinstance(values[f.name], SealedStr) and not is_token(values[f.name])]


def before_insert(_mapper: Any, connection: Any, target: Any) -> None:
    entity: EntitySpec = target.__entity__
    target.__dict__.update(index_values(entity, target.__dict__))  # blind indexes, from clear
    names = _plain_values(entity, target.__dict__)
    if not names:
        return
    key_id = getattr(target, KEY_ATTR, None) or create_key(connection, entity.name)
    setattr(target, KEY_ATTR, key_id)
    for name in names:
        target.__dict__[name] = SealedStr(target.__dict__[name], key_id)


def after_insert(_mapper: Any, connection: Any, target: Any) -> None:
    key_id = getattr(target, KEY_ATTR, None)
    if key_id is not None:
        link_key(connection, key_id, target.id)


def before_update(_mapper: Any, connection: Any, target: Any) -> None:
    entity: EntitySpec = target.__entity__
    insp = sa.inspect(target)
    changed = {f.name: target.__dict__.get(f.name) for f in entity.blind_fields
               if insp.attrs[f.name].history.has_changes()}
    for column, value in index_values(entity, changed).items():
        setattr(target, column, value)
    names = [n for n in _plain_values(entity, target.__dict__)
             if insp.attrs[n].history.has_changes()]
    if not names:
        return
    key_id = record_key(connection, entity.name, target.id)
    for name in names:
        target.__dict__[name] = SealedStr(target.__dict__[name], key_id)


def bulk_statement(orm_state: Any, subjects: dict[str, EntitySpec]) -> None:
    """Give the sealed values of a bulk INSERT/UPDATE on a subject table their keys."""
    if not (orm_state.is_insert or orm_state.is_update):
        return
    name = getattr(getattr(orm_state.statement, "table", None), "name", None)
    entity = subjects.get(name or "")
    params = orm_state.parameters
    if entity is None or not params:
        return
    conn = orm_state.session.connection()
    for values in params if isinstance(params, list | tuple) else [params]:
        values.update(index_values(entity, values))
        names = _plain_values(entity, values)
        if not names:
            continue
        if orm_state.is_update and values.get("id") is not None:
            key_id = record_key(conn, entity.name, values["id"])
        else:  # a new row: its key is found again through the tokens it holds
            key_id = create_key(conn, entity.name)
        for n in names:
            values[n] = SealedStr(values[n], key_id)


def sealed_change(session: Session, entity: str, record_id: Any, before: Any, after: Any
                  ) -> dict[str, Any] | None:
    """The audit diff of a sealed field: before/after sealed under the record's key."""
    b = None if before in (None, "") else str(before)
    a = None if after in (None, "") else str(after)
    if b == a:
        return None
    if record_id is None:
        return {"sealed": True, "changed": True}
    conn = session.connection()
    key_id = record_key(conn, entity, record_id)
    return {"sealed": True,
            "before": None if b is None else (b if is_token(b) else seal(key_id, b, conn)),
            "after": None if a is None else (a if is_token(a) else seal(key_id, a, conn))}


def erasing(session: Session, entity: str, record_id: Any) -> bool:
    """True while `record_id` of `entity` is being erased in this session."""
    return (entity, str(record_id)) in session.info.get(ERASING, ())


def erased_diff(diff: dict[str, Any]) -> dict[str, Any]:
    """The diff an erasure writes: which fields changed, never their values."""
    return {name: {"erased": True} for name in diff}


def install(app: Any, st: Any) -> None:
    """Attach the sealing events to the subject entities' classes and the session."""
    from app.state import listen

    subjects = {e.name: e for e in st.spec.entities if e.sealed_fields}
    for name in subjects:
        cls = st.models.model(name)
        listen(cls, "before_insert", before_insert)
        listen(cls, "after_insert", after_insert)
        listen(cls, "before_update", before_update)
    if subjects:
        listen(st.db.session.session_factory, "do_orm_execute",
                     lambda orm_state: bulk_statement(orm_state, subjects), insert=True)
