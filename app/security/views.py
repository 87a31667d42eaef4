"""The CRUD views' side of the record service: row rules, masking, pickers, stale forms.

`SecuredViewMixin` makes single-record and bulk actions honour the row rule (a
record the user cannot reach is a 404), keeps a masked value from overwriting
the stored one when a form comes back unchanged, and refuses a stale edit form.
Every answer comes from `app.records`; nothing here decides a rule itself.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.const import FLAMSG_ERR_SEC_ACCESS_DENIED
from flask_appbuilder.models.filters import BaseFilter
from wtforms import HiddenField
from wtforms.validators import StopValidation, ValidationError

from app.i18n import N_, gettext
from app.records import RecordError, records
from app.records.masking import is_masked
from app.records.service import conflict_message
from app.schema.spec import AppSpec, EntitySpec, FieldSpec
from app.state import state

VERSION_FIELD = "record_version"


def _editing_pk() -> Any:
    return request.view_args.get("pk") if request and request.view_args else None


class FilterRowRule(BaseFilter):
    """FAB base filter: the record service's row rule (lists, show, edit, delete, pickers)."""

    name = N_("Row rule")
    arg_name = "sdrow"

    def apply(self, query: Any, value: Any) -> Any:
        entity = getattr(self.datamodel, "entity", None)
        name = entity.name if entity is not None else self.datamodel.obj.__entity__.name
        # Views only run this for users who may read the entity; pickers (query
        # rel fields) run it for the target of a relation.
        return records(name).scoped(query, picker=True)


def no_value() -> None:
    """The (unused) value of the row-rule base filter."""
    return None


class KeepMasked:
    """First validator of a sensitive field: an unchanged masked value skips the rest."""

    field_flags: dict[str, bool] = {}

    def __init__(self, entity: EntitySpec, f: FieldSpec):
        self.entity = entity
        self.field = f

    def __call__(self, form: Any, field: Any) -> None:
        if _editing_pk() is None or records(self.entity.name).sees_sensitive:
            return
        if is_masked(self.field, field.raw_data[0] if field.raw_data else field.data):
            kept = getattr(form, "_sd_keep_masked", set())
            kept.add(field.name)
            form._sd_keep_masked = kept
            raise StopValidation()


class CurrentVersion:
    """Validator of the edit form's hidden version: a stale form is refused, nothing saved."""

    def __init__(self, entity: EntitySpec):
        self.entity = entity

    def __call__(self, form: Any, field: Any) -> None:
        pk = _editing_pk()
        if pk is None or field.data in (None, ""):
            return
        service = records(self.entity.name)
        current = service.session.get(service.model, int(pk))
        if current is not None and str(current.version) != str(field.data).strip():
            message = conflict_message()
            flash(message, "danger")
            raise ValidationError(message)


def version_field(entity: EntitySpec) -> HiddenField:
    return HiddenField(validators=[CurrentVersion(entity)])


def mask_formatter(entity: EntitySpec, f: FieldSpec, inner: Any = None) -> Any:
    """Return a list/show formatter showing `f` as the record service says."""

    def fmt(value: Any) -> Any:
        service = records(entity.name)
        if f.sensitive and not service.sees_sensitive:
            return service.show(f, value)
        return inner(value) if inner else value

    return fmt


def picker_filters(entity: EntitySpec, spec: AppSpec) -> dict[str, list[list[Any]]]:
    """Return `*_form_query_rel_fields`: relation pickers offer only reachable records."""
    return {
        f.name: [["id", FilterRowRule, no_value]]
        for f in entity.fields
        if f.is_relation
    }


class SecuredViewMixin:
    """Row rules on actions; masked values never overwrite stored ones; stale forms refused."""

    @property
    def database_error_message(self) -> str:
        """FAB flashes this when a write fails: the record service's own reason."""
        return g.get("sd_write_error") or gettext(N_("The record could not be saved."))

    def _get_visible(self, pk: Any) -> Any:
        try:
            return records(self.entity.name).get(pk)  # type: ignore[attr-defined]
        except RecordError:
            abort(404)

    @expose("/action/<string:name>/<pk>", methods=["POST"])
    def action(self, name: str, pk: Any) -> Any:
        permission_name = self.get_action_permission_name(name)
        if not self.appbuilder.sm.has_access(permission_name, self.class_permission_name):
            flash(gettext(str(FLAMSG_ERR_SEC_ACCESS_DENIED)), "danger")
            return redirect(".")
        return self.actions.get(name).func(self._get_visible(pk))

    @expose("/action_post", methods=["POST"])
    def action_post(self) -> Any:
        name = request.form["action"]
        permission_name = self.get_action_permission_name(name)
        if not self.appbuilder.sm.has_access(permission_name, self.class_permission_name):
            flash(gettext(str(FLAMSG_ERR_SEC_ACCESS_DENIED)), "danger")
            return redirect(".")
        items = [self._get_visible(pk) for pk in request.form.getlist("rowid")]
        return self.actions.get(name).func(items)

    def _get_add_widget(self, form: Any, exclude_cols: Any = None, widgets: Any = None) -> Any:
        """A new record's form shows the owner the record service will give it ($me)."""
        if request.method == "GET":
            service = records(self.entity.name)  # type: ignore[attr-defined]
            defaults = service.new_record_defaults()
            for f in service.entity.fields:
                if f.column_name in defaults and f.name in form and f.is_relation:
                    form[f.name].data = service.session.get(
                        state().models.model(f.to), defaults[f.column_name])
        return super()._get_add_widget(form, exclude_cols, widgets)  # type: ignore[misc]

    def post_add(self, item: Any) -> None:
        g.sd_saved_id = item.id

    def post_update(self, item: Any) -> None:
        g.sd_saved_id = item.id

    def _to_saved_record(self) -> Any:
        if g.get("sd_saved_id") is None:
            return redirect(self.get_redirect())  # type: ignore[attr-defined]
        return redirect(url_for(f"{type(self).__name__}.show", pk=g.sd_saved_id))

    def post_add_redirect(self) -> Any:
        """After saving, the user lands on the record they saved."""
        return self._to_saved_record()

    def post_edit_redirect(self) -> Any:
        return self._to_saved_record()

    def prefill_form(self, form: Any, pk: Any) -> None:
        super().prefill_form(form, pk)  # type: ignore[misc]
        entity: EntitySpec = self.entity  # type: ignore[attr-defined]
        service = records(entity.name)
        for f in entity.sensitive_fields:
            if f.name in form:
                form[f.name].data = service.show(f, form[f.name].data)
        if VERSION_FIELD in form:
            item = service.session.get(service.model, int(pk))
            form[VERSION_FIELD].data = item.version if item is not None else ""

    def process_form(self, form: Any, is_created: bool) -> None:
        super().process_form(form, is_created)  # type: ignore[misc]
        for name in (*getattr(form, "_sd_keep_masked", ()), VERSION_FIELD):
            if name in form:
                del form[name]
