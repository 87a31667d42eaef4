"""Checks of `views:` (kanban, calendar), `app.timezone` and a field's `currency`.

Kept beside `app.schema.checks` (which calls these with its `Checker`) so the
board and display options read as one piece: SD-E200…SD-E209, SD-W010…SD-W012.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from app.i18n import N_
from app.schema.spec import (
    DATE_TYPES,
    DEFAULT_TIMEZONE,
    CalendarSpec,
    EntitySpec,
    KanbanSpec,
    ViewsSpec,
)

if TYPE_CHECKING:
    from app.schema.checks import Checker

CODES: dict[str, str] = {
    "SD-E200": "unknown time zone",
    "SD-E201": "currency is not an ISO 4217 code",
    "SD-E202": "kanban group_by names a missing or non-enum field",
    "SD-E203": "kanban card names a missing field",
    "SD-E204": "calendar date names a missing or non-date field",
    "SD-E205": "calendar title names a missing field",
    "SD-E206": "calendar end names a missing field or one of another type than date",
    "SD-W010": "kanban card shows a sensitive field (masked for readers without view_sensitive)",
    "SD-W011": "kanban group_by has more than 12 choices (one column each)",
    "SD-W012": "calendar date is not in the entity's filters (not indexed)",
}

VIEWS_KEYS = ("kanban", "calendar")
KANBAN_KEYS = ("group_by", "card")
CALENDAR_KEYS = ("date", "title", "end")
MAX_KANBAN_COLUMNS = 12
# Columns a card or a calendar title may show besides the entity's fields.
SYSTEM_SHOWN = ("id", "created_at", "updated_at", "created_by", "updated_by")


def known_zone(name: str) -> bool:
    """True when `name` is an IANA time zone the system's zoneinfo knows."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


def check_timezone(checker: Checker, app: Any) -> str:
    """`app.timezone` (default Asia/Shanghai), or the default after reporting SD-E200."""
    value = app.get("timezone", DEFAULT_TIMEZONE) if isinstance(app, dict) else DEFAULT_TIMEZONE
    if isinstance(value, str) and known_zone(value):
        return value
    from zoneinfo import available_timezones

    checker.report(
        "SD-E200",
        "app.timezone",
        N_("'%(value)s' is not a time zone (use an IANA name such as Asia/Shanghai)"),
        app,
        "timezone",
        value=value,
        **checker.did_you_mean(value, sorted(available_timezones())),
    )
    return DEFAULT_TIMEZONE


def iso_currencies() -> set[str]:
    """The ISO 4217 codes Babel knows (CNY, USD, EUR, HKD…)."""
    from babel.numbers import list_currencies

    return set(list_currencies())


def check_currency(checker: Checker, node: dict, path: str) -> tuple[str | None, bool]:
    """A field's `currency` (upper-cased ISO code) and whether it is valid (SD-E201)."""
    value = node.get("currency")
    if value is None:
        return None, True
    code = str(value).upper()
    if isinstance(value, str) and code in iso_currencies():
        return code, True
    checker.report(
        "SD-E201",
        f"{path}.currency",
        N_("'%(value)s' is not an ISO 4217 currency code (such as CNY or USD)"),
        node,
        "currency",
        value=value,
        **checker.did_you_mean(code, sorted(iso_currencies())),
    )
    return None, False


def with_views(
    checker: Checker, entities: list[EntitySpec], entities_node: Any
) -> list[EntitySpec]:
    """The entities with their checked `views:` (fields are known by now)."""
    result = []
    for entity in entities:
        node = entities_node[entity.name].get("views")
        if node is not None:
            views = check_views(checker, entity, node, entities_node[entity.name])
            entity = dataclasses.replace(entity, views=views)
        result.append(entity)
    return result


def check_views(checker: Checker, entity: EntitySpec, node: Any, parent: Any) -> ViewsSpec:
    """Check `entities.<e>.views`; a view with a problem is left out."""
    path = f"entities.{entity.name}.views"
    if not checker.expect_map(node, path, parent, "views"):
        return ViewsSpec()
    checker.unknown_keys(node, VIEWS_KEYS, path)
    kanban = calendar = None
    if node.get("kanban") is not None and checker.expect_map(
        node["kanban"], f"{path}.kanban", node, "kanban"
    ):
        kanban = check_kanban(checker, entity, node["kanban"], f"{path}.kanban")
    if node.get("calendar") is not None and checker.expect_map(
        node["calendar"], f"{path}.calendar", node, "calendar"
    ):
        calendar = check_calendar(checker, entity, node["calendar"], f"{path}.calendar")
    return ViewsSpec(kanban=kanban, calendar=calendar)


def _shown_names(entity: EntitySpec) -> list[str]:
    return [f.name for f in entity.fields] + list(SYSTEM_SHOWN)


def check_kanban(checker: Checker, entity: EntitySpec, node: Any, path: str) -> KanbanSpec | None:
    """`views.kanban: {group_by: <enum>, card: [fields]}`; None on a problem."""
    checker.unknown_keys(node, KANBAN_KEYS, path)
    group_by = node.get("group_by")
    ok = True
    if group_by is None:
        checker.report(
            "SD-E102", f"{path}.group_by", N_("'%(name)s' is required"), node, name="group_by"
        )
        ok = False
    elif not entity.has_field(str(group_by)) or entity.field(str(group_by)).type != "enum":
        enums = [f.name for f in entity.fields if f.type == "enum"]
        checker.report(
            "SD-E202",
            f"{path}.group_by",
            N_(
                "'%(name)s' is not an enum field of %(entity)s; a kanban has a "
                "column per choice of an enum"
            ),
            node,
            "group_by",
            name=group_by,
            entity=entity.name,
            **checker.did_you_mean(group_by, enums),
        )
        ok = False
    elif len(entity.field(str(group_by)).choices) > MAX_KANBAN_COLUMNS:
        checker.report(
            "SD-W011",
            f"{path}.group_by",
            N_("'%(name)s' has %(count)s choices: the board gets as many columns"),
            node,
            "group_by",
            name=group_by,
            count=len(entity.field(str(group_by)).choices),
        )
    card = node.get("card", [])
    if not checker.expect_list(card, f"{path}.card", node, "card"):
        return None
    names = _shown_names(entity)
    for i, name in enumerate(card):
        if name not in names:
            checker.report(
                "SD-E203",
                f"{path}.card[{i}]",
                N_("'%(name)s' is not a field of %(entity)s"),
                card,
                i,
                name=name,
                entity=entity.name,
                **checker.did_you_mean(name, names),
            )
            ok = False
        elif entity.has_field(str(name)) and entity.field(str(name)).sensitive:
            checker.report(
                "SD-W010",
                f"{path}.card[{i}]",
                N_(
                    "'%(name)s' is sensitive: cards show it masked to readers "
                    "without view_sensitive"
                ),
                card,
                i,
                name=name,
            )
    if not ok:
        return None
    return KanbanSpec(group_by=str(group_by), card=tuple(str(n) for n in card))


def check_calendar(
    checker: Checker, entity: EntitySpec, node: Any, path: str
) -> CalendarSpec | None:
    """`views.calendar: {date: <date|datetime>, title?: <field>, end?: <field>}`."""
    checker.unknown_keys(node, CALENDAR_KEYS, path)
    dates = [f.name for f in entity.fields if f.type in DATE_TYPES] + ["created_at", "updated_at"]
    date = node.get("date")
    ok = True
    if date is None:
        checker.report("SD-E102", f"{path}.date", N_("'%(name)s' is required"), node, name="date")
        ok = False
    elif date not in dates:
        checker.report(
            "SD-E204",
            f"{path}.date",
            N_("'%(name)s' is not a date or datetime field of %(entity)s"),
            node,
            "date",
            name=date,
            entity=entity.name,
            **checker.did_you_mean(date, dates),
        )
        ok = False
    elif date not in entity.filters:
        checker.report(
            "SD-W012",
            f"{path}.date",
            N_(
                "'%(name)s' is not in filters: add it there so the database "
                "indexes it and a month loads fast"
            ),
            node,
            "date",
            name=date,
        )
    title = node.get("title", entity.title)
    names = _shown_names(entity)
    if title is not None and title not in names:
        checker.report(
            "SD-E205",
            f"{path}.title",
            N_("'%(name)s' is not a field of %(entity)s"),
            node,
            "title",
            name=title,
            entity=entity.name,
            **checker.did_you_mean(title, names),
        )
        ok = False
    end = node.get("end")
    if end is not None and (
        end not in dates or _date_type(entity, end) != _date_type(entity, date)
    ):
        checker.report(
            "SD-E206",
            f"{path}.end",
            N_("'%(name)s' is not a field of %(entity)s of the same type as '%(date)s'"),
            node,
            "end",
            name=end,
            entity=entity.name,
            date=date,
            **checker.did_you_mean(end, dates),
        )
        ok = False
    if not ok:
        return None
    return CalendarSpec(
        date=str(date), title=str(title) if title else None, end=str(end) if end else None
    )


def _date_type(entity: EntitySpec, name: Any) -> str | None:
    if name in ("created_at", "updated_at"):
        return "datetime"
    return entity.field(str(name)).type if entity.has_field(str(name)) else None
