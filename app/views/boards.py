"""Kanban (看板) and calendar (日历) pages of an entity's `views:`, at /E/kanban/ and /E/calendar/.

Adapters over the record service, like the list: the rows are
`records(E).query()` (grants and row rules), every shown value goes through
`show` (masking) and the list's formatter, and a card dragged to another column
is written by the service — a workflow transition when the column field is the
workflow's state (状态流转), else an update with the card's version checked.
"""

from __future__ import annotations

import calendar as cal
import datetime as dt
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import Response, abort, jsonify, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.security.decorators import has_access_api

from app.i18n import N_, current_lang, gettext
from app.records import Invalid, RecordError, records
from app.records.display import app_zone, local_to_utc, local_today, to_local
from app.records.service import RecordService
from app.schema.conditions import SYSTEM_FIELDS
from app.schema.spec import ACTIONS, EntitySpec, FieldSpec
from app.state import state
from app.views.crud import EMPTY, display_formatter, lazy_text

CARDS_PER_COLUMN = 100
EVENTS_PER_PAGE = 2000
KANBAN_TEMPLATE = "boards/kanban.html"
CALENDAR_TEMPLATE = "boards/calendar.html"


# -- values as the list shows them -------------------------------------------------


def field_of(entity: EntitySpec, name: str) -> FieldSpec | None:
    return entity.field(name) if entity.has_field(name) else SYSTEM_FIELDS.get(name)


def shown(service: RecordService, name: str, obj: Any) -> str:
    """The value of `name` on `obj` as this user sees it on the list (masked, formatted)."""
    f = field_of(service.entity, name)
    value = getattr(obj, name, None)
    if f is not None and f.is_many:
        value = [str(v) for v in value or []]
    elif f is not None:
        value = service.show(f, value)
    text = display_formatter(f)(value)
    return str(text) if text not in (None, "") else EMPTY


def record_title(service: RecordService, obj: Any, name: str | None = None) -> str:
    """The record's title (or `name`), masked where sensitive; `Label #id` when empty."""
    name = name or service.entity.title
    if name and name != "id":
        text = shown(service, name, obj)
        if text != EMPTY:
            return text
    return f"{service.entity.label.get(current_lang())} #{obj.id}"


def show_url(entity: EntitySpec, pk: int) -> str:
    return url_for(f"{entity.class_name}View.show", pk=pk)


def order_clause(service: RecordService) -> Any:
    """The entity's `order` (first key) as an ORDER BY, newest first by default."""
    key = service.entity.order[0] if service.entity.order else "-created_at"
    name = key.lstrip("-")
    f = field_of(service.entity, name)
    column = service.table.c[f.column_name if f is not None and f.is_foreign_key else name]
    return (column.desc() if key.startswith("-") else column.asc()), service.table.c.id.desc()


# -- kanban ----------------------------------------------------------------------


def kanban_board(service: RecordService, search: str = "") -> dict[str, Any]:
    """Columns (one per choice, in choice order) with their count and first cards.

    `search` is the list's free-text box (the service's `search` fields).
    """
    spec = service.entity.views.kanban
    assert spec is not None
    lang = current_lang()
    f = service.entity.field(spec.group_by)
    column = service.table.c[f.column_name]
    found = service.search_clause(search)
    counting = sa.select(column, sa.func.count()).select_from(service.table).group_by(column)
    if found is not None:
        counting = counting.where(found)
    counts = dict(service.session.execute(service.scoped(counting)).all())
    list_url = url_for(f"{service.entity.class_name}View.list")
    may_move = service.can("update") and not f.readonly
    columns = []
    for choice in f.choices:
        query = service.query().filter(column == choice.key)
        if found is not None:
            query = query.filter(found)
        objs = query.order_by(*order_clause(service)).limit(CARDS_PER_COLUMN).all()
        columns.append(
            {
                "key": choice.key,
                "label": choice.label.get(lang),
                "count": counts.get(choice.key, 0),
                "cards": [card(service, obj, may_move) for obj in objs],
                "list_url": f"{list_url}?f_{f.name}={choice.key}",
            }
        )
    return {
        "columns": columns,
        "may_move": may_move,
        "field_label": f.label.get(lang),
        "unset": counts.get(None, 0),
    }


def card(service: RecordService, obj: Any, may_move: bool) -> dict[str, Any]:
    """One card: title, link, the `card` fields, version, and the columns it may go to."""
    spec = service.entity.views.kanban
    assert spec is not None
    lang = current_lang()
    targets: list[str] | None = None
    wf = service.entity.workflow
    if may_move and wf is not None and wf.field == spec.group_by:
        targets = sorted({t.to for t in service.transitions(obj)})
    return {
        "id": obj.id,
        "version": obj.version,
        "title": record_title(service, obj),
        "url": show_url(service.entity, obj.id),
        "fields": [
            {
                "name": name,
                "label": field_of(service.entity, name).label.get(lang),
                "text": shown(service, name, obj),
            }
            for name in spec.card
        ],
        "targets": targets,
    }


def move_card(
    service: RecordService, pk: Any, target: str, version: int | None, comment: str | None
) -> Any:
    """Put record `pk` in column `target`: its workflow step from→to, else an update."""
    spec = service.entity.views.kanban
    assert spec is not None
    f = service.entity.field(spec.group_by)
    lang = current_lang()
    if target not in [c.key for c in f.choices]:
        raise Invalid(gettext(N_("No such column.")))
    obj = service.get(pk, "update", lock=True)
    current = getattr(obj, f.name)
    if current == target:
        return obj
    wf = service.entity.workflow
    if wf is not None and wf.field == f.name:
        step = next((t for t in wf.leaving(current) if t.to == target), None)
        if step is None:
            steps = ", ".join(t.label.get(lang) for t in service.transitions(obj))
            raise Invalid(
                gettext(
                    N_(
                        "No workflow step leads from %(from)s to %(to)s. Steps you can take from "
                        "here: %(steps)s."
                    ),
                    **{
                        "from": f.choice_label(current, lang),
                        "to": f.choice_label(target, lang),
                        "steps": steps or EMPTY,
                    },
                )
            )
        return service.transition(obj, step.name, comment, expected_version=version)
    if f.readonly:
        raise Invalid(gettext(N_("%(field)s cannot be changed."), field=f.label.get(lang)))
    return service.update(obj, {f.name: target}, expected_version=version)


# -- calendar --------------------------------------------------------------------


def month_of(text: str | None) -> dt.date:
    """The first day of `YYYY-MM` (this month in the app zone when missing or wrong)."""
    try:
        year, month = (int(p) for p in (text or "").split("-")[:2])
        return dt.date(year, month, 1)
    except (TypeError, ValueError):
        return local_today().replace(day=1)


def month_grid(first: dt.date) -> list[list[dt.date]]:
    """The weeks (Monday first, as Chinese calendars are) that cover `first`'s month."""
    weeks = cal.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    return [list(week) for week in weeks]


def calendar_events(
    service: RecordService, start: dt.date, end: dt.date, search: str = ""
) -> dict[dt.date, list[dict[str, Any]]]:
    """Records whose date (to `end`) falls in [start, end], by local day (and `search`)."""
    spec = service.entity.views.calendar
    assert spec is not None
    date_f = field_of(service.entity, spec.date)
    end_f = field_of(service.entity, spec.end) if spec.end else None
    is_time = date_f is not None and date_f.type == "datetime"
    low: Any = local_to_utc(dt.datetime.combine(start, dt.time())) if is_time else start
    high: Any = (
        local_to_utc(dt.datetime.combine(end + dt.timedelta(days=1), dt.time()))
        if is_time
        else end + dt.timedelta(days=1)
    )
    date_col = service.table.c[spec.date]
    last_col = sa.func.coalesce(service.table.c[end_f.name], date_col) if end_f else date_col
    query = service.query().filter(date_col < high, last_col >= low, date_col.is_not(None))
    found = service.search_clause(search)
    if found is not None:
        query = query.filter(found)
    objs = query.order_by(date_col.asc(), service.table.c.id.asc()).limit(EVENTS_PER_PAGE).all()
    days: dict[dt.date, list[dict[str, Any]]] = {}
    for obj in objs:
        first = _local_day(getattr(obj, spec.date))
        last = _local_day(getattr(obj, spec.end)) if spec.end and getattr(obj, spec.end) else first
        value = getattr(obj, spec.date)
        event = {
            "id": obj.id,
            "title": record_title(service, obj, spec.title),
            "time": to_local(value).strftime("%H:%M") if isinstance(value, dt.datetime) else "",
            "url": show_url(service.entity, obj.id),
            "past": last < local_today(),
        }
        day = max(first, start)
        while day <= min(last, end):
            days.setdefault(day, []).append(event)
            day += dt.timedelta(days=1)
    return days


def agenda_days(
    days: dict[dt.date, list[dict[str, Any]]], first: dt.date
) -> list[tuple[dt.date, list[dict[str, Any]]]]:
    """The phone list: the month's days with records, and today (where the day starts)."""
    wanted = {d for d in days if (d.year, d.month) == (first.year, first.month)}
    today = local_today()
    if (today.year, today.month) == (first.year, first.month):
        wanted.add(today)
    return [(d, days.get(d, [])) for d in sorted(wanted)]


def _local_day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return to_local(value).date()
    return value


WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


# -- the pages -------------------------------------------------------------------


class EntityBoardsView(BaseView):
    """Base of the generated board views; `entity` is set on each subclass."""

    entity: EntitySpec
    method_permission_name = {"kanban": "read", "kanban_move": "update", "calendar": "read"}
    # Every action of the entity: FAB's permission sync deletes, on the shared
    # view menu `<entity>`, any permission a registered view does not list.
    base_permissions = [f"can_{action}" for action in ACTIONS]

    def _page(self, template: str, **kwargs: Any) -> Any:
        lang = current_lang()
        return self.render_template(
            template,
            searchable=bool(records(self.entity.name).searchable()),
            search=request.args.get("q", ""),
            entity=self.entity,
            entity_label=self.entity.label.get(lang),
            list_link=url_for(f"{self.entity.class_name}View.list"),
            board_links=board_links(self.entity),
            **kwargs,
        )

    @expose("/kanban/")
    @has_access
    def kanban(self) -> Any:
        """The board: a column per choice of the `group_by` enum."""
        if self.entity.views.kanban is None:
            abort(404)
        service = records(self.entity.name)
        board = kanban_board(service, request.args.get("q", ""))
        return self._page(
            KANBAN_TEMPLATE,
            board=board,
            title=gettext(N_("%(entity)s board"), entity=self.entity.label.get(current_lang())),
            move_url=url_for(f"{type(self).__name__}.kanban_move"),
        )

    @expose("/kanban/move", methods=["POST"])
    @has_access_api
    def kanban_move(self) -> Response:
        """JSON `{id, to, version, comment?}`: move a card; answers the card or the reason."""
        if self.entity.views.kanban is None:
            abort(404)
        body = request.get_json(silent=True) or request.form
        service = records(self.entity.name)
        version = body.get("version")
        try:
            obj = move_card(
                service,
                body.get("id"),
                str(body.get("to") or ""),
                int(version) if str(version or "").isdigit() else None,
                body.get("comment"),
            )
        except RecordError as exc:
            service.session.rollback()
            needs_comment = isinstance(exc, Invalid) and "comment" in exc.errors
            return jsonify(ok=False, message=exc.message, needs_comment=needs_comment), exc.status
        return jsonify(
            ok=True,
            card=card(service, obj, True),
            state=getattr(obj, self.entity.views.kanban.group_by),
        )

    @expose("/calendar/")
    @has_access
    def calendar(self) -> Any:
        """A month of records by their date; a day list on phones."""
        spec = self.entity.views.calendar
        if spec is None:
            abort(404)
        first = month_of(request.args.get("month"))
        weeks = month_grid(first)
        service = records(self.entity.name)
        search = request.args.get("q", "")
        days = calendar_events(service, weeks[0][0], weeks[-1][-1], search)
        keep = f"&q={quote(search)}" if search else ""
        lang = current_lang()
        last_day = first.replace(day=cal.monthrange(first.year, first.month)[1])
        prev_month = (first - dt.timedelta(days=1)).replace(day=1)
        next_month = last_day + dt.timedelta(days=1)
        url = url_for(f"{type(self).__name__}.calendar")
        return self._page(
            CALENDAR_TEMPLATE,
            weeks=weeks,
            days=days,
            first=first,
            today=local_today(),
            weekdays=[gettext(w) for w in WEEKDAYS],
            month_title=f"{first.year}年{first.month}月"
            if lang == "zh"
            else first.strftime("%B %Y"),
            prev_url=f"{url}?month={prev_month:%Y-%m}{keep}",
            next_url=f"{url}?month={next_month:%Y-%m}{keep}",
            today_url=f"{url}?q={quote(search)}" if search else url,
            zone=str(app_zone()),
            agenda=agenda_days(days, first),
            date_label=field_of(self.entity, spec.date).label.get(lang),
            title=gettext(N_("%(entity)s calendar"), entity=self.entity.label.get(lang)),
        )


def board_links(entity: EntitySpec) -> list[dict[str, str]]:
    """The entity's kanban/calendar links (for its list page and the board pages)."""
    links = []
    if entity.views.kanban is not None:
        links.append(
            {
                "kind": "kanban",
                "icon": "fa-columns",
                "label": gettext(N_("Board")),
                "url": f"/{entity.name}/kanban/",
            }
        )
    if entity.views.calendar is not None:
        links.append(
            {
                "kind": "calendar",
                "icon": "fa-calendar",
                "label": gettext(N_("Calendar")),
                "url": f"/{entity.name}/calendar/",
            }
        )
    return links


def list_board_links() -> list[dict[str, str]]:
    """Board links of the list being shown, if the user may read its entity.

    Used by the list template: `request.blueprint` names the entity's ModelView.
    """
    from flask import current_app

    for entity in state().spec.entities:
        if request.blueprint == f"{entity.class_name}View":
            if not current_app.appbuilder.sm.has_access("can_read", entity.name):
                return []
            return board_links(entity)
    return []


def make_boards_view(entity: EntitySpec) -> type[EntityBoardsView]:
    """Generate the board view class of one entity, at /<entity>/kanban|calendar/."""
    attrs = {
        "entity": entity,
        "route_base": f"/{entity.name}",
        "class_permission_name": entity.name,
    }
    return type(f"{entity.class_name}BoardsView", (EntityBoardsView,), attrs)


def init_boards(app: Any, appbuilder: Any) -> None:
    """Register the board views of entities with `views:`, each in its entity's menu."""
    from app.views.crud import lazy_label

    app.jinja_env.globals["sd_board_links"] = list_board_links
    for entity in state().spec.entities:
        views = entity.views
        if views.kanban is None and views.calendar is None:
            continue
        view = appbuilder.add_view_no_menu(make_boards_view(entity))
        for kind, spec, icon, msgid in (
            ("kanban", views.kanban, "fa-columns", N_("%(entity)s board")),
            ("calendar", views.calendar, "fa-calendar", N_("%(entity)s calendar")),
        ):
            if spec is None:
                continue
            appbuilder.add_link(
                f"{entity.name}_{kind}",
                href=f"/{entity.name}/{kind}/",
                icon=icon,
                label=_menu_label(entity, msgid),
                category=entity.menu.en,
                category_label=lazy_label(entity.menu),
                baseview=view,
            )


def _menu_label(entity: EntitySpec, msgid: str) -> Any:
    return lazy_text(msgid, entity=_LazyEntityLabel(entity))


class _LazyEntityLabel:
    """The entity's label in the language of the request that renders the menu."""

    def __init__(self, entity: EntitySpec):
        self.entity = entity

    def __str__(self) -> str:
        return self.entity.label.get(current_lang())
