"""The list grid: one filter panel, chips, saved views (场景), columns, bulk actions.

This module is the list page and the grid's endpoints; the filters and pickers
are in `grid_filters`, saved views in `grid_views`, the bulk-action registry in
`grid_bulk` (its API is re-exported here).

Everything here is an adapter of the record service (`records(entity)`): which
fields a user may filter (`may_filter`), which rows a picker offers
(`row_clause(picker=True)`), how a typed value reads (`parse_input`) and how a
record is written (`update`, `delete_many`). Nothing decides a rule itself.

The panel speaks in URL arguments, parsed in one place (`parse_conditions`):

- `f_<field>=a,b`      any of (enum keys or labels, 是/否, record ids);
- `f_<field>__from=x`, `f_<field>__to=y`   a date, date-time or number range;
- `f_<field>__has=x`   text contains;
- `cols=a,b,c`         the visible columns, in order;
- `sv=<id>`            the saved view being shown (`sv=none`: no default view).

They ride along with FAB's own (`q`, `_oc_*`, `_od_*`, `psize_*`, `page_*` and
`_flt_*`, still honoured), so paging, sorting and the page size keep the
filters, and the exporter (`app/io/exporter.py`, which joins the list view's
base filters) exports exactly what the list shows; `f_id=1,2` is "the selected
rows".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_appbuilder import expose, has_access
from flask_appbuilder.widgets import ListWidget

from app.i18n import N_, current_lang, gettext
from app.records import RecordService, records
from app.records.counting import EXACT_ARG, ListCount
from app.records.scope import current_user_record
from app.records.values import CellError, parse_input
from app.schema.spec import EntitySpec, FieldSpec
from app.state import state
from app.views.grid_bulk import (
    BULK_ACTIONS,
    BulkAction,
    back_to_list,
    bulk_actions_for,
    register_bulk_action,
    settable_fields,
)
from app.views.grid_filters import (
    CHOICE_TYPES,
    PREFIX,
    Condition,
    FilterGridPanel,
    control_kind,
    field_label,
    filter_field,
    parse_conditions,
    pick_options,
    picked,
)
from app.views.grid_views import (
    default_view,
    role_label,
    role_names,
    save_view,
    shareable_roles,
    view_url,
    views_table,
    visible_views,
)

# The grid's API for the rest of the console: crud.py's base filter and mixin, the
# bulk-action registry (app/approvals/bulk.py registers into it).
__all__ = [
    "BULK_ACTIONS",
    "BulkAction",
    "FilterGridPanel",
    "GridMixin",
    "back_to_list",
    "bulk_actions_for",
    "parse_conditions",
    "register_bulk_action",
    "register_grid",
    "settable_fields",
]

PAGE_SIZES = (10, 20, 50, 100)

bp = Blueprint("grid", __name__, url_prefix="/grid")


# -- what the list page shows -------------------------------------------------------------


@dataclass
class Control:
    """One control of the filter panel, ready for the template."""

    name: str
    label: str
    kind: str
    input_type: str = "text"
    options: list[tuple[str, str]] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)
    picked: list[dict[str, Any]] = field(default_factory=list)
    low: str = ""
    high: str = ""
    text: str = ""
    url: str = ""
    exact: bool = False  # a sealed field: whole values only (its blind index)


@dataclass
class Chip:
    label: str
    remove_url: str


def panel_fields(service: RecordService) -> list[FieldSpec]:
    """The fields the panel offers: the entity's `filters` this user may filter."""
    names = list(service.entity.filters) or [
        f.name for f in service.entity.fields if control_kind(f)][:6]
    out = []
    for name in names:
        f = filter_field(service, name)
        if f is not None and control_kind(f) not in ("", "ids"):
            out.append(f)
    return out


def _choices(f: FieldSpec) -> list[tuple[str, str]]:
    if f.type == "boolean":
        return [("1", gettext(N_("Yes"))), ("0", gettext(N_("No")))]
    lang = current_lang()
    return [(c.key, c.label.get(lang)) for c in f.choices]


def _selected_keys(cond: Condition | None) -> list[str]:
    if cond is None:
        return []
    return [("1" if v else "0") if isinstance(v, bool) else str(v) for v in cond.values]


def panel_controls(service: RecordService, conds: list[Condition]) -> list[Control]:
    """The panel's controls, filled with the active conditions."""
    by_key = {c.key: c for c in conds}
    controls = []
    for f in panel_fields(service):
        kind = control_kind(f)
        key = PREFIX + f.name
        control = Control(key, field_label(f), kind)
        if kind == "choice":
            control.options = _choices(f)
            control.selected = _selected_keys(by_key.get(key))
        elif kind == "picker":
            control.url = url_for("grid.pick", entity=service.entity.name, name=f.name)
            cond = by_key.get(key)
            if cond is not None:
                control.picked = picked(service, f, cond.values)
        elif kind == "range":
            control.input_type = "date" if f.type in ("date", "datetime") else "number"
            control.low = request.args.get(key + "__from", "")
            control.high = request.args.get(key + "__to", "")
        else:
            control.text = request.args.get(key + "__has", "")
            control.exact = service.is_blind(f.name)
        controls.append(control)
    return controls


def url_without(*keys: str) -> str:
    """The current list URL without `keys` (and back on page one)."""
    # A changed list is no longer the saved view it came from: `sv` goes too.
    args = [(k, v) for k, v in request.args.items(multi=True)
            if k not in keys and k != "sv" and not k.startswith("page_")]
    if not args:
        args = [("sv", "none")]  # nothing left: do not fall back to the default view
    return f"{request.path}?{urlencode(args)}"


def _chip_value(service: RecordService, cond: Condition) -> str:
    f = cond.field
    if cond.op == "has" and service.is_blind(f.name):
        return gettext(N_("is “%(text)s”"), text=cond.raw)
    if cond.op == "has":
        return gettext(N_("contains “%(text)s”"), text=cond.raw)
    if cond.op in ("from", "to"):
        sign = "≥" if cond.op == "from" else "≤"
        return f"{sign} {cond.raw}"
    if control_kind(f) == "picker":
        return ", ".join(p["text"] for p in picked(service, f, cond.values))
    if control_kind(f) == "ids":
        return gettext(N_("%(count)s selected"), count=len(cond.values))
    labels = dict(_choices(f))
    return ", ".join(labels.get(k, k) for k in _selected_keys(cond))


def chips(service: RecordService, conds: list[Condition], view: Any) -> list[Chip]:
    """The active filters as removable chips (panel conditions and FAB `_flt_` ones)."""
    out = []
    ranges: dict[str, list[Condition]] = {}
    for c in conds:
        if c.op in ("from", "to"):
            ranges.setdefault(c.field.name, []).append(c)
        else:
            out.append(Chip(f"{field_label(c.field)}: {_chip_value(service, c)}",
                            url_without(c.key)))
    for pair in ranges.values():  # a range is one chip: 创建时间: 2026-01-01 – 2026-03-31
        low = next((c.raw for c in pair if c.op == "from"), None)
        high = next((c.raw for c in pair if c.op == "to"), None)
        value = f"{low} – {high}" if low and high else _chip_value(service, pair[0])
        out.append(Chip(f"{field_label(pair[0].field)}: {value}",
                        url_without(*(c.key for c in pair))))
    search = request.args.get("q", "").strip()
    if search:
        out.append(Chip(gettext(N_("Keyword: %(text)s"), text=search), url_without("q")))
    searches = view._filters.get_search_filters() if view is not None else {}
    for key, value in request.args.items():
        match = re.match(r"^_flt_(\d+)_(\w+)$", key)
        if not match or not value:
            continue
        index, column = int(match.group(1)), match.group(2)
        flts = searches.get(column) or []
        if index >= len(flts):
            continue  # FAB ignores it too
        op = str(gettext(str(flts[index].name)))
        label = view.label_columns.get(column, column) if view is not None else column
        out.append(Chip(f"{label} {op} {_fab_value(service, column, value)}",
                        url_without(key)))
    return out


def _fab_value(service: RecordService, column: str, value: str) -> str:
    """A FAB filter's value in words: an enum's label, 是/否; else as typed."""
    f = service.field(column)
    if f is None or f.type not in CHOICE_TYPES:
        return value
    try:
        parsed = parse_input(value, f)
    except CellError:
        return value
    if isinstance(parsed, bool):
        return gettext(N_("Yes")) if parsed else gettext(N_("No"))
    return f.choice_label(parsed, current_lang())


def list_columns(service: RecordService, view: Any) -> list[str]:
    """The columns this user may choose from: the list's, then every field, then system ones."""
    names = list(service.entity.list)
    names += [f.name for f in service.entity.fields if f.name not in names]
    names += [n for n in ("created_at", "updated_at", "created_by", "updated_by")
              if n not in names]
    return [n for n in names if n in view.label_columns]


def chosen_columns(service: RecordService, view: Any) -> list[str]:
    """The `cols` argument, kept to columns this user may see; else the list's own."""
    allowed = list_columns(service, view)
    wanted = [c for c in (request.args.get("cols") or "").split(",") if c in allowed]
    return list(dict.fromkeys(wanted)) or list(view.list_columns)


# -- the list page ------------------------------------------------------------------------


class GridListWidget(ListWidget):
    """The list table: checkboxes for the bulk bar, cards on a phone (grid/list_widget.html)."""

    template = "grid/list_widget.html"

    def __call__(self, **kwargs: Any) -> Any:
        """Render with the app's context processors too, which bulk-action partials may use."""
        from flask import current_app

        args = self.template_args.copy()
        args.update(kwargs)
        current_app.update_template_context(args)
        return current_app.jinja_env.get_template(self.template).render(args)


class GridMixin:
    """ModelView side of the grid: chosen columns and the grid context in the list widget."""

    list_widget = GridListWidget

    @expose("/list/")
    @has_access
    def list(self) -> Any:
        """The list; opened bare, it shows the user's default view if they chose one."""
        return apply_default_view(self) or super().list()  # type: ignore[misc]

    def _get_list_widget(self, filters: Any, actions: Any = None, order_column: str = "",
                         order_direction: str = "", page: Any = None, page_size: Any = None,
                         widgets: Any = None, **kwargs: Any) -> Any:
        """FAB's list widget, with the user's columns and the grid (chips, bulk actions)."""
        entity: EntitySpec = self.entity  # type: ignore[attr-defined]
        service = records(entity.name)
        widgets = widgets or {}
        page_size = page_size or self.page_size  # type: ignore[attr-defined]
        if not order_column and self.base_order:  # type: ignore[attr-defined]
            order_column, order_direction = self.base_order  # type: ignore[attr-defined]
        joined = filters.get_joined_filters(self._base_filters)  # type: ignore[attr-defined]
        counted, items = self.datamodel.query_page(  # type: ignore[attr-defined]
            joined, order_column, order_direction, page=page, page_size=page_size)
        count = int(counted)
        columns = chosen_columns(service, self) if request.endpoint \
            and request.endpoint.endswith(".list") else list(self.list_columns)  # type: ignore[attr-defined]
        widgets["list"] = self.list_widget(
            label_columns=self.label_columns,  # type: ignore[attr-defined]
            include_columns=columns,
            value_columns=self.datamodel.get_values(items, columns),  # type: ignore[attr-defined]
            order_columns=self.order_columns,  # type: ignore[attr-defined]
            formatters_columns=self.formatters_columns,  # type: ignore[attr-defined]
            page=page, page_size=page_size, count=count, count_info=counted,
            count_text=count_text(counted), has_next=len(items) >= page_size,
            exact_url=exact_count_url() if not counted.exact else "",
            pks=self.datamodel.get_keys(items),  # type: ignore[attr-defined]
            actions=actions or self.actions,  # type: ignore[attr-defined]
            filters=filters,
            modelview_name=self.__class__.__name__,
            bulk_actions=bulk_actions_for(service) if request.endpoint
            and request.endpoint.endswith(".list") else [],
            page_sizes=PAGE_SIZES,
            entity_name=entity.name,
            bulk_fields=[(f.name, field_label(f)) for f in settable_fields(service)],
            title_column=entity.title if entity.title in columns else columns[0],
            **kwargs,
        )
        return widgets


def count_text(counted: ListCount) -> str:
    """The record count in words: "1,234 条记录", "约 1,000,000 条记录", "10,000+ 条记录"."""
    number = f"{counted.value:,}"
    if counted.kind == "estimate":
        return gettext(N_("About %(count)s records"), count=number)
    if counted.kind == "capped":
        return gettext(N_("%(count)s+ records"), count=number)
    return gettext(N_("%(count)s records"), count=number)


def exact_count_url() -> str:
    """The current list URL asking for the exact count (the "精确计数" link)."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != EXACT_ARG]
    return f"{request.path}?{urlencode([*args, (EXACT_ARG, 'exact')])}"


def grid_context() -> dict[str, Any] | None:
    """Everything the list page's panel, chips, views and column chooser need (or None)."""
    st = state()
    blueprint = request.blueprint or ""
    entity = next((e for e in st.spec.entities if blueprint == f"{e.class_name}View"), None)
    if entity is None or not (request.endpoint or "").endswith(".list"):
        return None
    view = st.views.get(entity.name)
    service = records(entity.name)
    conds = parse_conditions(service, request.args)
    user = current_user_record()
    views = visible_views(entity.name, user)
    columns = list_columns(service, view)
    chosen = chosen_columns(service, view)
    return {
        "entity": entity,
        "controls": panel_controls(service, conds),
        "chips": chips(service, conds, view),
        "clear_url": f"{request.path}?sv=none",
        "views": [dict(v, url=view_url(entity, v), role_label=role_label(v["role"]))
                  for v in views],
        "active_view": request.args.get("sv", ""),
        "query_string": request.query_string.decode(),
        "roles": shareable_roles(user),
        "columns": [(c, str(view.label_columns.get(c, c)), c in chosen)
                    for c in chosen + [c for c in columns if c not in chosen]],
        "keep_args": [(k, v) for k, v in request.args.items(multi=True)
                      if not k.startswith((PREFIX, "page_")) and k not in ("sv",)],
        "search_fields": ", ".join(field_label(f) for f in service.searchable()),
    }


def apply_default_view(view: Any) -> Any | None:
    """A redirect to the user's default view when the list is opened bare, else None."""
    if request.args:
        return None
    found = default_view(view.entity.name, current_user_record())
    return redirect(view_url(view.entity, found)) if found is not None else None


# -- JSON and form endpoints ----------------------------------------------------------------


def _service_or_404(entity: str, action: str = "read") -> RecordService:
    from flask_login import current_user

    if not current_user or not current_user.is_authenticated:
        abort(401)
    try:
        service = records(entity)
    except KeyError:
        abort(404)
    if not service.can(action):
        abort(403)
    return service


@bp.route("/<entity>/pick/<name>")
def pick(entity: str, name: str) -> Response:
    """JSON for a relation picker: `{results: [{id, text}], more}`; `q` searches, `page` pages.

    Only a field the user may filter (or set), only rows the target's record
    service lets the user pick.
    """
    service = _service_or_404(entity)
    f = service.field(name)
    if f is None or not (f.is_relation or f.type == "user") or not (
            service.may_filter(name) or f in settable_fields(service)):
        abort(404)
    page = request.args.get("page", "1")
    results, more = pick_options(service, f, request.args.get("q", ""),
                                 int(page) if page.isdigit() else 1)
    return jsonify({"results": results, "pagination": {"more": more}})


@bp.route("/<entity>/bulk/<name>", methods=["POST"])
def bulk(entity: str, name: str) -> Any:
    """Run bulk action `name` on the selected rows (`rowid`), then back to the list."""
    action = BULK_ACTIONS.get(name)
    if action is None:
        abort(404)
    service = _service_or_404(entity, action.permission)
    if not action.available(service):
        abort(404)
    ids = sorted({int(v) for v in request.form.getlist("rowid") if v.isdigit()})
    if not ids:
        flash(gettext(N_("Select at least one record first.")), "warning")
        return back_to_list()
    reachable = service.reachable_ids(ids)
    if len(reachable) != len(ids):
        abort(404)
    return action.run(service, ids)


@bp.route("/<entity>/field/<name>")
def value_widget(entity: str, name: str) -> Any:
    """The value input of bulk "set a field" for `name`: the form's own widget (a partial)."""
    service = _service_or_404(entity, "update")
    f = next((x for x in settable_fields(service) if x.name == name), None)
    if f is None:
        abort(404)
    widget = None
    unbound = getattr(state().views.get(entity), "edit_form_extra_fields", {}).get(f.name)
    if unbound is not None and not (f.is_relation or f.type == "user"):
        from wtforms.meta import DefaultMeta

        # the form's own field and widget, named `value`
        bound = unbound.bind(form=None, name="value", _meta=DefaultMeta())
        bound.process(None)
        widget = bound(id="sd-bulk-value")
    return render_template("grid/_value.html", f=f, widget=widget, kind=control_kind(f),
                           url=url_for("grid.pick", entity=entity, name=name))


@bp.route("/<entity>/views", methods=["POST"])
def views_save(entity: str) -> Any:
    """Save the list as it is shown (filters, search, sort, columns, page size) as a view."""
    service = _service_or_404(entity)
    user = current_user_record()
    name = (request.form.get("name") or "").strip()[:100]
    if not name:
        flash(gettext(N_("Give the view a name.")), "warning")
        return back_to_list()
    role = request.form.get("role") or None
    if role is not None and role not in dict(shareable_roles(user)):
        abort(403)
    view_id = save_view(service.entity.name, user, name, request.form.get("query", ""),
                        role, bool(request.form.get("is_default")))
    flash(gettext(N_("View “%(name)s” saved."), name=name), "success")
    saved = next(v for v in visible_views(entity, user) if v["id"] == view_id) \
        if role is None or role in role_names(user) else None
    return redirect(view_url(service.entity, saved)) if saved else back_to_list()


@bp.route("/<entity>/views/<int:view_id>/delete", methods=["POST"])
def views_delete(entity: str, view_id: int) -> Any:
    """Delete a view: its owner only (a shared view is read-only for the role's users)."""
    _service_or_404(entity)
    user = current_user_record()
    t = views_table()
    session = state().db.session
    row = session.execute(sa.select(t).where(t.c.id == view_id, t.c.entity == entity)
                          ).mappings().first()
    if row is None or row["user_id"] != user.id:
        abort(404)
    session.execute(t.delete().where(t.c.id == view_id))
    session.commit()
    flash(gettext(N_("View “%(name)s” deleted."), name=row["name"]), "success")
    return redirect(url_for(f"{state().spec.entity(entity).class_name}View.list", sv="none"))


def register_grid() -> None:
    """Serve the grid's endpoints and give list pages `sd_grid()` (inside the app's context)."""
    from flask import current_app

    app = current_app
    if "grid" not in app.blueprints:
        app.register_blueprint(bp)
    app.jinja_env.globals["sd_grid"] = grid_context
