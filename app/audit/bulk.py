"""Audit entries of bulk-inserted rows, built from the values the writer already has.

The capture's `do_orm_execute` hook turns a bulk INSERT into one entry per row,
but to do so it reads back every referenced record and every subject key one
statement at a time (two thirds of an import's time). A writer that knows the
new rows' values and ids (the importer, with INSERT ... RETURNING) stages the
same entries here instead: the same `Capture._row_values`, `_diff`,
`_row_title` and `entry`, with the referenced records loaded once per chunk
and sealed fields sealed under the key the writer made for the row. The
statement is run with the `AUDITED` execution option so the capture does not
record it a second time; the entries join the session's pending list and are
chained once, at commit, under the audit_head lock, like every other entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.capture import (
    AUDITED,
    PENDING,
    _IdRef,
    _innermost,
    acting_actor,
    capture_of_app,
    entry,
)
from app.privacy.keys import key_id_of, seal

__all__ = ["AUDITED", "stage_creates"]


def _preload(session: Session, capture: Any, cls: type, audited: Any,
             rows: Sequence[dict[str, Any]], links: Sequence[dict[str, list[int]]]) -> list[Any]:
    """Load every record the new rows refer to, once; the diff then finds them in the session."""
    wanted: dict[type, set[Any]] = {}
    for t in audited.fields:
        if t.kind == "ref":
            ids = {r.get(t.column) for r in rows} - {None}
        elif t.kind == "many":
            ids = {i for r in links for i in r.get(t.name, ())}
        else:
            continue
        if ids:
            wanted.setdefault(capture._target_class(cls, t.name), set()).update(ids)
    loaded: list[Any] = []
    for target, ids in wanted.items():
        pk = sa.inspect(target).primary_key[0]
        ordered = sorted(ids)
        for i in range(0, len(ordered), 500):
            loaded += session.query(target).filter(pk.in_(ordered[i:i + 500])).all()
    return loaded  # held so the identity map (weak) keeps them for the diff


def _sealed(key_id: str | None, value: Any, stored: Any, conn: Any) -> dict[str, Any] | None:
    """`sealing.sealed_change(before=None)` for a row whose key the writer made.

    `stored` is the row's own value: when it is `value` sealed under the row's
    key already (a sealed column), the entry keeps that token, not a second one.
    """
    after = None if value in (None, "") else str(value)
    if after is None:
        return None
    if key_id is None:
        return {"sealed": True, "changed": True}
    if isinstance(stored, str) and key_id_of(stored) == key_id and stored != after:
        return {"sealed": True, "before": None, "after": stored}
    return {"sealed": True, "before": None, "after": seal(key_id, after, conn)}


def stage_creates(session: Session, entity: str, rows: Sequence[dict[str, Any]],
                  ids: Sequence[Any], links: Sequence[dict[str, list[int]]],
                  keys: Sequence[str | None], plain: Sequence[dict[str, str]]) -> None:
    """Stage the `create` entries of rows just inserted (chained at commit).

    `rows` are the column values as inserted, `ids` their new ids, `links` their
    many-to-many ids by field, `keys` the subject key of each row (or None) and
    `plain` the clear text of each row's sealed fields.
    """
    capture = capture_of_app()
    if hasattr(session, "registry"):  # a scoped_session: the session it stands for
        session = session()  # type: ignore[operator]
    cls = capture.classes_by_entity[entity]
    audited = capture.audited[cls]
    sealed = {f.name for f in audited.spec.log_sealed_fields} \
            if audited.spec is not None else set()
    many = [t for t in audited.fields if t.kind == "many"]
    targets = {t.name: capture._target_class(cls, t.name) for t in many}
    held = _preload(session, capture, cls, audited, rows, links)
    actor, tag = acting_actor(), _innermost(session)
    pending = session.info.setdefault(PENDING, [])
    conn = session.connection()
    with session.no_autoflush:
        for row, record_id, row_links, key_id, clear in zip(rows, ids, links, keys, plain,
                                                            strict=True):
            values = dict(row, id=record_id)
            changes: dict[str, Any] = {}
            sealed_diff: dict[str, Any] = {}
            for t, value in capture._row_values(audited, values):
                if t.spec is not None and t.spec.name in sealed:
                    change = _sealed(key_id, clear.get(t.name, value), value, conn)
                    if change:
                        sealed_diff[t.name] = change
                else:
                    changes[t.name] = (None, value)
            for t in many:
                chosen = row_links.get(t.name, [])
                if chosen:
                    changes[t.name] = ([], [_IdRef(i, targets[t.name]) for i in chosen])
            diff = capture._diff(session, audited, changes, record_id)
            diff.update(sealed_diff)
            pending.append((tag, entry(actor, "create", entity, record_id,
                                       capture._row_title(audited, values), diff, None)))
    del held

