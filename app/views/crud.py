"""Spec -> one Flask-AppBuilder ModelView per entity, at /<entity>/..."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import ModelView, action, expose, has_access
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import LazyString
from wtforms import validators

from app.i18n import N_, current_lang, gettext
from app.records import NotFound, RecordError, records
from app.records.counting import ListCount, bounded_count
from app.records.display import format_datetime, format_decimal, person_name
from app.records.values import CellError, parse_input
from app.schema.conditions import SYSTEM_FIELDS
from app.schema.spec import ACTIONS, EntitySpec, FieldSpec, Label
from app.security.views import (
    VERSION_FIELD,
    FilterRowRule,
    KeepMasked,
    SecuredViewMixin,
    mask_formatter,
    no_value,
    picker_filters,
    version_field,
)
from app.state import state
from app.views.fields import SpecField
from app.views.grid import FilterGridPanel, GridMixin

PAGE_SIZES = (10, 20, 50, 100)


def lazy_label(label: Label) -> LazyString:
    """A label that renders in the language of the request that shows it."""
    return LazyString(lambda: label.get(current_lang()))


def lazy_text(message: str, **params: Any) -> LazyString:
    return LazyString(lambda: gettext(message, **params))


class SpecInterface(SQLAInterface):
    """FAB's SQLAlchemy interface, loading relations with the page's query.

    Many-to-one relations are joined into the list query and many-to-many ones
    loaded with one IN query per relation, so a page costs the same number of
    statements whatever its size.
    """

    def __init__(self, obj: type, session: Any = None, entity: EntitySpec | None = None):
        super().__init__(obj, session)
        self.entity = entity

    def eager_options(self) -> list[Any]:
        if self.entity is None:
            return []
        return records(self.entity.name).eager_options()

    def _write(self, method: str, *args: Any) -> Any:
        """Writes go through the record service (defaults, scope check, version, audit)."""
        try:
            return getattr(records(self.entity.name), method)(*args)  # type: ignore[union-attr]
        except RecordError as exc:
            g.sd_write_error = exc.message  # FAB flashes it (see SecuredViewMixin)
            raise

    def add(self, item: Any, commit: bool = True) -> None:
        self._write("save", item, True)

    def edit(self, item: Any, commit: bool = True) -> None:
        self._write("save", item, False)

    def delete(self, item: Any, commit: bool = True) -> None:
        self._write("delete", item)

    def delete_all(self, items: list[Any]) -> None:
        self._write("delete_many", items)

    def apply_order_by(self, query: Any, order_column: str, order_direction: str,
                       *args: Any, **kwargs: Any) -> Any:
        """Order only by what the record service lets this user sort on."""
        if self.entity is not None and order_column \
                and not records(self.entity.name).may_sort(order_column):
            order_column, order_direction = default_order(self.entity)
        return super().apply_order_by(query, order_column, order_direction, *args, **kwargs)

    def apply_filters(self, query: Any, filters: Any) -> Any:
        """Apply the list's filters, skipping values the column cannot hold.

        A filter value typed by hand ("abc" for a date, "x" for a yes/no) is
        ignored rather than sent to the database, where PostgreSQL would fail.
        """
        if not filters:
            return query
        service = records(self.entity.name) if self.entity is not None else None
        for flt, values in zip(filters.filters, filters.values, strict=False):
            if service is not None and flt.column_name != "id" \
                    and not service.may_filter_column(flt.column_name):
                continue  # a sensitive field this user may not see: no oracle on it
            items = (
                values
                if isinstance(values, list) and flt.arg_name not in {"in", "not_in"}
                else [values]
            )
            for value in items:
                coerced = coerce_filter_value(self.entity, flt.column_name, value)
                if coerced is not INVALID:
                    query = flt.apply(query, coerced)
        return query

    def query(
        self,
        filters: Any = None,
        order_column: str = "",
        order_direction: str = "",
        page: int | None = None,
        page_size: int | None = None,
        select_columns: list[str] | None = None,
        outer_default_load: bool = False,
    ) -> tuple[int, list[Any]]:
        if select_columns and any("." in c for c in select_columns):
            # the API: FAB joins the dotted columns itself
            return super().query(filters, order_column, order_direction, page, page_size,
                                 select_columns, outer_default_load)
        count, items = self.query_page(filters, order_column, order_direction, page,
                                       page_size, select_columns, outer_default_load)
        return int(count), items

    def query_page(
        self,
        filters: Any = None,
        order_column: str = "",
        order_direction: str = "",
        page: int | None = None,
        page_size: int | None = None,
        select_columns: list[str] | None = None,
        outer_default_load: bool = False,
    ) -> tuple[ListCount, list[Any]]:
        """One page and its bounded count (`app.records.counting`: no full COUNT per page)."""
        query = self.session.query(self.obj)
        count = bounded_count(self._apply_inner_all(
            query, filters, select_columns=select_columns, aliases_mapping={}))
        query = self.apply_all(
            query,
            filters,
            order_column,
            order_direction,
            page,
            page_size,
            select_columns,
            outer_default_load,
        )
        return count, query.options(*self.eager_options()).all()


INVALID = object()
PARSED_FILTER_TYPES = ("integer", "decimal", "boolean", "date", "datetime", "enum")


def coerce_filter_value(entity: EntitySpec | None, column_name: str, value: Any) -> Any:
    """Return a filter value read like typed input (the record service's parser), or INVALID.

    `是`, `2026/11/23`, `1,234` and an enum's label (`活跃`) mean what they mean in a
    form or an import; text the column cannot hold is INVALID (ignored, not sent
    to the database, where PostgreSQL would fail).
    """
    if callable(value) or value is None or entity is None:
        return value
    name = column_name.removesuffix("_id")
    if column_name == "id" or (entity.has_field(name) and entity.field(name).is_foreign_key):
        text = str(value).strip()  # a record id
        return value if text.isdigit() or text == "" else INVALID
    f = entity.field(column_name) if entity.has_field(column_name) \
        else SYSTEM_FIELDS.get(column_name)
    if f is None or f.type not in PARSED_FILTER_TYPES or str(value).strip() == "":
        return value
    try:
        return parse_input(str(value), f)
    except CellError:
        return INVALID


class FilterTextSearch(BaseFilter):
    """The list's free-text box: `q` matched (case-insensitive) in any `search` field."""

    name = N_("Search")
    arg_name = "sdq"

    def apply(self, query: Any, value: Any) -> Any:
        text = value() if callable(value) else value
        entity: EntitySpec | None = getattr(self.datamodel, "entity", None)
        if entity is None:
            return query
        clause = records(entity.name).search_clause(text or "")
        return query if clause is None else query.filter(clause)


def search_text() -> str:
    return request.args.get("q", "") if request else ""


class EntityView(GridMixin, SecuredViewMixin, ModelView):
    """Base of the generated views; `entity` is set on each subclass."""

    entity: EntitySpec
    list_template = "schemadesk/list.html"
    show_template = "schemadesk/show.html"
    page_size = 20

    @action(
        "muldelete",
        lazy_text(N_("Delete")),
        lazy_text(N_("Delete all selected records?")),
        "fa-trash",
        single=False,
    )
    def muldelete(self, items: list[Any]) -> Any:
        try:
            self.datamodel.delete_all(items)
        except RecordError as exc:
            flash(exc.message, "danger")
        self.update_redirect()
        return redirect(self.get_redirect())

    @expose("/transition/<pk>/<name>", methods=["POST"])
    @has_access
    def transition(self, pk: Any, name: str) -> Any:
        """Take workflow step `name` on a record (form field `comment`); back to its page."""
        service = records(self.entity.name)
        try:
            obj = service.get(pk, "update", lock=True)
            service.transition(obj, name, request.form.get("comment"))
        except NotFound:
            abort(404)
        except RecordError as exc:
            flash(exc.message, "danger")
        else:
            from app.approvals.service import submitted_message

            wf = self.entity.workflow
            lang = current_lang()
            waiting = submitted_message(self.entity, obj)
            if waiting:
                flash(waiting, "info")
                return redirect(url_for(f"{type(self).__name__}.show", pk=pk))
            flash(gettext(N_("Done: %(step)s. The record is now %(state)s."),
                          step=wf.transition(name).label.get(lang),  # type: ignore[union-attr]
                          state=self.entity.field(wf.field).choice_label(  # type: ignore[union-attr]
                              getattr(obj, wf.field), lang)), "success")  # type: ignore[union-attr]
        return redirect(url_for(f"{type(self).__name__}.show", pk=pk))

    def render_template(self, template: str, **kwargs: Any) -> Any:
        """The show page also gets the workflow steps this user may take on the record."""
        if template == self.show_template and "pk" in kwargs:
            from app.views.detail import record_page  # title, actions, child counts

            kwargs["sd_record"] = record_page(self, kwargs["pk"])
        if template == self.show_template and "pk" in kwargs and self.entity.workflow:
            service = records(self.entity.name)
            try:
                obj = service.get(kwargs["pk"])
            except RecordError:
                obj = None
            if obj is not None and service.can("update"):
                lang = current_lang()
                kwargs["sd_transitions"] = [
                    {"name": t.name, "label": t.label.get(lang), "comment": t.comment}
                    for t in service.transitions(obj)]
        return super().render_template(template, **kwargs)


class UniqueValue:
    """Refuse a value another record already has, saying which field (the service's check)."""

    def __init__(self, f: FieldSpec, entity: EntitySpec):
        self.field = f
        self.entity = entity

    def __call__(self, form: Any, field: Any) -> None:
        if field.data in (None, ""):
            return
        pk = request.view_args.get("pk") if request and request.view_args else None
        service = records(self.entity.name)
        current = service.session.get(service.model, int(pk)) if pk is not None else None
        problems = service.unique_problem(self.field, field.data, current)
        if problems:
            raise validators.ValidationError(problems[0])


EMPTY = "—"


def display_formatter(f: FieldSpec | None) -> Any:
    """How a list cell or a detail row shows a value: words, titles, never code.

    Empty is —, enums their label, booleans 是/否 (Yes/No), relations their
    title (many as a comma list), decimals with separators at the field's
    scale (money with its currency sign), date-times in the app's time zone to
    the minute, logins (`user` fields, created_by) by the person's name.
    """

    def fmt(value: Any) -> Any:
        if value is None or value == "" or value == []:
            return EMPTY
        if f is not None and f.type == "enum":
            return f.choice_label(value, current_lang())
        if f is not None and f.type == "user":
            return person_name(value)
        if isinstance(value, bool):
            return gettext(N_("Yes")) if value else gettext(N_("No"))
        if isinstance(value, dt.datetime):
            return format_datetime(value)  # stored UTC, shown in app.timezone
        if isinstance(value, Decimal | int) and f is not None and f.type == "decimal":
            return format_decimal(value, f.scale, f.currency, current_lang())
        if isinstance(value, Decimal):
            return f"{value:,.{f.scale if f is not None else 2}f}"
        if isinstance(value, list | tuple | set):
            return ", ".join(str(v) for v in value)
        return value

    return fmt


def default_order(entity: EntitySpec) -> tuple[str, str]:
    """The entity's `order` (first key) as FAB's (column, direction)."""
    order = entity.order[0] if entity.order else "-created_at"
    direction = "desc" if order.startswith("-") else "asc"
    name = order.lstrip("-")
    if entity.has_field(name) and entity.field(name).is_foreign_key:
        name = entity.field(name).column_name
    return name, direction


def make_view(entity: EntitySpec, model: type, session: Any) -> type[EntityView]:
    """Generate the ModelView class of one entity."""
    datamodel = SpecInterface(model, session, entity)
    labels: dict[str, Any] = {f.name: lazy_label(f.label) for f in entity.fields}
    labels.update(
        {
            "id": lazy_text(N_("ID")),
            "created_at": lazy_text(N_("Created at")),
            "updated_at": lazy_text(N_("Updated at")),
            "created_by": lazy_text(N_("Created by")),
            "updated_by": lazy_text(N_("Updated by")),
        }
    )
    # the workflow's state field moves only by its steps (buttons on the show page)
    editable = [f.name for f in entity.fields if not f.readonly
                and not (entity.workflow and f.name == entity.workflow.field)]
    all_columns = [f.name for f in entity.fields]
    extra_fields: dict[str, Any] = {}
    formatters: dict[str, Any] = {}
    for f in entity.fields:
        formatters[f.name] = display_formatter(f)
        if f.sensitive:
            formatters[f.name] = mask_formatter(entity, f, formatters.get(f.name))
        if f.is_relation or f.type == "user":
            continue
        # Every other field reads typed text like the API and the importer do.
        vals: list[Any] = [UniqueValue(f, entity)] if f.unique else []
        extra_fields[f.name] = SpecField(
            f, validators=vals, keep_masked=KeepMasked(entity, f) if f.sensitive else None)
    for name in ("created_at", "updated_at", "created_by", "updated_by"):
        formatters[name] = display_formatter(SYSTEM_FIELDS.get(name))
    order_name, direction = default_order(entity)
    search = (
        list(entity.filters)
        or [f.name for f in entity.fields if not f.is_many and not f.encrypted][:5]
    )
    attrs: dict[str, Any] = {
        "entity": entity,
        "datamodel": datamodel,
        "route_base": f"/{entity.name}",
        "class_permission_name": entity.name,
        # Every action of the schema lives on this view menu; listing them all
        # keeps FAB's permission sync from deleting import/export/view_sensitive.
        "base_permissions": [f"can_{action}" for action in ACTIONS],
        "method_permission_name": {
            "list": "read",
            "show": "read",
            "add": "create",
            "edit": "update",
            "delete": "delete",
            "download": "read",
            "action": "read",
            "action_post": "read",
            "muldelete": "delete",
            "transition": "update",
            "api_read": "read",
            "api_get": "read",
            "api_column_add": "create",
            "api_column_edit": "update",
            "api_readvalues": "read",
        },
        "list_title": lazy_label(entity.label),
        "show_title": lazy_label(entity.label),
        "add_title": lazy_label(entity.label),
        "edit_title": lazy_label(entity.label),
        "list_columns": list(entity.list),
        "show_columns": all_columns + ["created_at", "created_by", "updated_at", "updated_by"],
        "add_columns": editable,
        "edit_columns": [*editable, VERSION_FIELD],
        "search_columns": search,
        "label_columns": labels,
        "description_columns": {
            f.name: lazy_label(f.help) for f in entity.fields if f.help is not None
        },
        "formatters_columns": formatters,
        "add_form_query_rel_fields": picker_filters(entity, state().spec),
        "search_form_query_rel_fields": picker_filters(entity, state().spec),
        "edit_form_query_rel_fields": picker_filters(entity, state().spec),
        "add_form_extra_fields": dict(extra_fields),
        "edit_form_extra_fields": {**extra_fields, VERSION_FIELD: version_field(entity)},
        "base_order": (order_name, direction),
        "base_filters": [["id", FilterTextSearch, search_text], ["id", FilterRowRule, no_value],
                         ["id", FilterGridPanel, no_value]],
        "page_size": 20,
    }
    return type(f"{entity.class_name}View", (EntityView,), attrs)
