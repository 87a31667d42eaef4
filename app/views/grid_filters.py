"""The grid's filters: the panel's URL conditions, read in one place, and the pickers.

See app/views/grid.py for the URL form. Conditions become one SQL criterion over
the entity's table (`conditions_clause`), applied as a base filter of the list
view (`FilterGridPanel`), so the list, its count and the exporter agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import request
from flask_appbuilder.models.filters import BaseFilter

from app.i18n import N_, current_lang
from app.records import RecordService, records
from app.records.values import CellError, parse_input
from app.schema.conditions import SYSTEM_FIELDS
from app.schema.spec import EntitySpec, FieldSpec
from app.state import state

PREFIX = "f_"
RANGE_TYPES = ("date", "datetime", "integer", "decimal")
CHOICE_TYPES = ("enum", "boolean")
TEXT_TYPES = ("string", "text", "email", "phone", "url")
PICK_PAGE = 20


@dataclass
class Condition:
    """One active filter of the panel: `field` `op` (in, from, to, has) `values`."""

    field: FieldSpec
    op: str
    key: str
    values: list[Any]
    raw: str
    exclusive: bool = False  # `to` of a date-time range given as a day: before next midnight


def filter_field(service: RecordService, name: str) -> FieldSpec | None:
    """The field `name` if this user may filter on it (the record service says), else None."""
    if name == "id":
        return SYSTEM_FIELDS["id"]
    f = service.field(name)
    if f is None or not service.may_filter(name):
        return None
    return f


def control_kind(f: FieldSpec) -> str:
    if f.name == "id":
        return "ids"
    if f.type in CHOICE_TYPES:
        return "choice"
    if f.is_relation or f.type == "user":
        return "picker"
    if f.type in RANGE_TYPES:
        return "range"
    if f.type in TEXT_TYPES:
        return "contains"
    return ""


def _parse_one(f: FieldSpec, op: str, text: str) -> Any:
    """One typed value of a condition, read like form input; raises CellError."""
    if op == "in" and control_kind(f) in ("picker", "ids"):
        if not text.strip().isdigit():
            raise CellError(N_("Not a valid record id."))
        return int(text)
    if op == "has":
        return text.strip()
    if f.type == "datetime":
        from app.records.display import app_zone, local_to_utc

        if not is_whole_day(f, text):
            return parse_input(text, f, zone=app_zone())  # typed in the app's time zone
        # A date in a date-time range means that whole day in the app's time zone;
        # `to` becomes the next midnight, excluded (Condition.exclusive).
        day = parse_input(text, FieldSpec(f.name, "date", f.label))
        midnight = dt.datetime.combine(day if op == "from" else day + dt.timedelta(days=1),
                                       dt.time())
        return local_to_utc(midnight)
    return parse_input(text, f)


def is_whole_day(f: FieldSpec, text: str) -> bool:
    """Whether `text` for date-time field `f` is a day without a time."""
    return f.type == "datetime" and ":" not in text and "T" not in text


OPS = {"": "in", "__from": "from", "__to": "to", "__has": "has"}
ALLOWED_OPS = {"choice": {"in"}, "picker": {"in"}, "ids": {"in"},
               "range": {"from", "to"}, "contains": {"has"}}


def parse_conditions(service: RecordService, args: Any) -> list[Condition]:
    """The panel's conditions in `args` (a request's args); unusable ones are dropped.

    A field the user may not filter (a sensitive one without `view_sensitive`),
    an operator the field's type has no control for, or a value the column cannot
    hold is ignored rather than sent to the database.
    """
    found: list[Condition] = []
    for key in dict.fromkeys(args):
        if not key.startswith(PREFIX):
            continue
        name, _, suffix = key[len(PREFIX):].partition("__")
        op = OPS.get(f"__{suffix}" if suffix else "")
        f = filter_field(service, name)
        # several values of one control: joined by commas, or repeated (a form without JS)
        raw = ",".join(v.strip() for v in args.getlist(key) if v.strip()) \
            if hasattr(args, "getlist") else (args.get(key) or "").strip()
        if op is None or f is None or not raw or op not in ALLOWED_OPS.get(control_kind(f), ()):
            continue
        parts = [p for p in raw.split(",") if p.strip()] if op == "in" else [raw]
        values = []
        for part in parts:
            try:
                values.append(_parse_one(f, op, part.strip()))
            except CellError:
                continue  # a value the column cannot hold: left out
        if values:
            found.append(Condition(f, op, key, values, raw,
                                   exclusive=op == "to" and is_whole_day(f, raw)))
    return found


def condition_clause(service: RecordService, cond: Condition) -> Any:
    """The SQL criterion of one condition over the entity's table."""
    table = service.table
    f = cond.field
    if f.is_many:
        m2m = state().models.m2m_tables[(service.entity.name, f.name)]
        left, right = list(m2m.c)
        return table.c.id.in_(sa.select(left).where(right.in_(cond.values)))
    if service.is_blind(f.name):  # sealed: whole values, by the blind index
        return service.equals_clause(f, cond.values)
    column = table.c[f.column_name if f.name not in SYSTEM_FIELDS else _system_column(f)]
    if cond.op == "in":
        return column.in_(cond.values)
    if cond.op == "from":
        return column >= cond.values[0]
    if cond.op == "to":
        return column < cond.values[0] if cond.exclusive else column <= cond.values[0]
    return column.ilike(f"%{_escape(cond.values[0])}%", escape="\\")


def _system_column(f: FieldSpec) -> str:
    return f"{f.name}_id" if f.type == "user" else f.name


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def conditions_clause(service: RecordService, args: Any) -> Any | None:
    """All the panel's conditions in `args` as one criterion (AND), or None."""
    clauses = [condition_clause(service, c) for c in parse_conditions(service, args)]
    return sa.and_(*clauses) if clauses else None


class FilterGridPanel(BaseFilter):
    """FAB base filter of every entity list: the panel's `f_*` arguments of the request.

    A base filter, so the list, its count and the exporter (which joins the
    view's base filters) all apply the same conditions.
    """

    name = N_("Filters")
    arg_name = "sdgrid"

    def apply(self, query: Any, value: Any) -> Any:
        entity = getattr(self.datamodel, "entity", None)
        if entity is None or not request:
            return query
        clause = conditions_clause(records(entity.name), request.args)
        return query if clause is None else query.filter(clause)


# -- titles of related records -------------------------------------------------------


def title_select(target: EntitySpec | None) -> tuple[Any, Any]:
    """(table, title column or None) of a picker's target (None target: login accounts)."""
    if target is None:
        from flask_appbuilder.security.sqla.models import User

        table = User.__table__
        return table, table.c.username
    table = state().models.table(target.name)
    title = target.title
    if not title or title == "id" or not target.has_field(title):
        return table, None
    f = target.field(title)
    if f.sensitive or f.encrypted or f.is_foreign_key or f.is_many:
        return table, None
    return table, table.c[f.column_name]


def _target(f: FieldSpec) -> EntitySpec | None:
    return state().spec.entity(f.to) if f.is_relation and f.to else None


def picked(service: RecordService, f: FieldSpec, ids: list[int]) -> list[dict[str, Any]]:
    """[{id, text}] of the chosen records of a picker condition (once per request)."""
    from flask import g

    memo = g.setdefault("_sd_picked", {})
    key = (service.entity.name, f.name, tuple(ids))
    if key not in memo:
        memo[key] = pick_options(service, f, ids=ids)[0]
    return memo[key]


def pick_options(service: RecordService, f: FieldSpec, text: str = "", page: int = 1,
                 ids: list[int] | None = None) -> tuple[list[dict[str, Any]], bool]:
    """The records a user may pick for relation `f`: ([{id, text}], more pages?).

    Rows come through the target's record service with `picker=True` (the same
    rows a form's relation field offers); `text` matches the title.
    """
    target = _target(f)
    table, title = title_select(target)
    columns = [table.c.id] + ([title] if title is not None else [])
    stmt = sa.select(*columns)
    if target is not None:
        stmt = records(target.name, service.user).scoped(stmt, picker=True)
    if ids is not None:
        stmt = stmt.where(table.c.id.in_(ids or [0]))
    text = (text or "").strip()
    if text:
        match = table.c.id == int(text) if text.isdigit() else sa.false()
        if title is not None:
            match = sa.or_(match, title.ilike(f"%{_escape(text)}%", escape="\\"))
        stmt = stmt.where(match)
    stmt = stmt.order_by(title if title is not None else table.c.id, table.c.id)
    page = max(page, 1)
    rows = service.session.execute(
        stmt.offset((page - 1) * PICK_PAGE).limit(PICK_PAGE + 1)).all()
    results = [{"id": r[0], "text": str(r[1]) if len(r) > 1 and r[1] is not None
                else f"#{r[0]}"} for r in rows[:PICK_PAGE]]
    return results, len(rows) > PICK_PAGE


def field_label(f: FieldSpec) -> str:
    """A field's label in the reader's language."""
    return f.label.get(current_lang())
