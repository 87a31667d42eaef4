"""The dashboard's due list (待办提醒) follows the declared `reminders:` when there are any.

Without declared rules, the dashboard lists each entity's `next_*`/`due_*`
date fields (the old convention). With rules, it lists what the rules watch:
the rule's date (shifted by an `after:` delay), restricted by its `when`, so a
resolved service request drops off the list. Yearly rules are not lists of
things to do and are left out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.schema.spec import EntitySpec, FieldSpec


def dashboard_reminders(entity: EntitySpec) -> list[tuple[FieldSpec, Any, dt.timedelta]]:
    """(date field, SQL condition or None, delay) of each due list the entity shows."""
    from app.charts.aggregate import reminder_fields
    from app.records.scope import ScopeCompiler
    from app.schema.conditions import field_of
    from app.state import state

    spec = state().spec
    if not spec.reminders:
        return [(f, None, dt.timedelta(0)) for f in reminder_fields(entity)]
    out: list[tuple[FieldSpec, Any, dt.timedelta]] = []
    seen: set[tuple[str, int]] = set()
    for rule in spec.reminders:
        if rule.entity != entity.name or rule.yearly or (rule.date, rule.offset) in seen:
            continue
        f = field_of(entity, rule.date)
        if f is None:
            continue
        seen.add((rule.date, rule.offset))
        when = ScopeCompiler(spec, 0).compile(entity, rule.when) if rule.when else None
        out.append((f, when, dt.timedelta(seconds=max(rule.offset, 0))))
    return out
