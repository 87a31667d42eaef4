"""The detail page's head (app/templates/schemadesk/show.html): title, actions, child counts.

What the record page needs beyond FAB's field table, asked of the record
service: the record's title as the user may see it, which actions the user may
take (edit, delete, history), and how many child records of each `children`
entity the user reaches (the tab badges).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import current_app, url_for

from app.i18n import current_lang
from app.records import RecordError, records
from app.schema.spec import EntitySpec
from app.state import state
from app.views.boards import record_title


def child_counts(entity: EntitySpec, pk: int) -> dict[str, int]:
    """{child view name: records of that child entity pointing at `pk` the user reaches}."""
    spec = state().spec
    counts: dict[str, int] = {}
    for name in entity.children:
        child = spec.entity(name)
        link = next((f for f in child.fields if f.is_foreign_key and f.to == entity.name), None)
        service = records(name)
        if link is None or not service.can("read"):
            continue
        table = service.table
        stmt = service.scoped(
            sa.select(sa.func.count()).select_from(table).where(table.c[link.column_name] == pk)
        )
        counts[f"{child.class_name}View"] = service.session.execute(stmt).scalar_one()
    return counts


def record_page(view: Any, pk: Any) -> dict[str, Any] | None:
    """The head of the detail page of record `pk`, or None if the user does not reach it."""
    entity: EntitySpec = view.entity
    service = records(entity.name)
    try:
        obj = service.get(pk)
    except RecordError:
        return None
    name = type(view).__name__
    sm = current_app.appbuilder.sm
    return {
        "title": record_title(service, obj),
        "entity_label": entity.label.get(current_lang()),
        "list_url": url_for(f"{name}.list"),
        "edit_url": url_for(f"{name}.edit", pk=obj.id) if service.can("update") else None,
        "delete_url": url_for(f"{name}.delete", pk=obj.id) if service.can("delete") else None,
        "history_url": (
            f"/audit/list/?_flt_3_entity={entity.name}&_flt_3_record_id={obj.id}"
            if sm.has_access("can_read", "audit_log")
            else None
        ),
        "counts": child_counts(entity, obj.id),
    }
