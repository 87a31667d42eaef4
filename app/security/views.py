"""What the generated CRUD views need from security: row rules, masking, pickers.

`SecuredViewMixin` makes single-record actions and bulk actions honour the row
rule (a record the user cannot see is a 404), and keeps a masked value from
overwriting the stored one when a form is submitted unchanged. The helpers
build the per-entity formatters and relation-picker filters `make_view` uses.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request
from flask_appbuilder import expose
from flask_appbuilder.const import FLAMSG_ERR_SEC_ACCESS_DENIED
from wtforms.validators import StopValidation

from app.i18n import gettext
from app.schema.spec import AppSpec, EntitySpec, FieldSpec
from app.security.masking import can_view_sensitive, is_masked, mask_value
from app.security.rows import FilterRowRule, no_value


def _editing_pk() -> Any:
    return request.view_args.get("pk") if request and request.view_args else None


class KeepMasked:
    """First validator of a sensitive field: an unchanged masked value skips the rest."""

    field_flags: dict[str, bool] = {}

    def __init__(self, entity: EntitySpec, f: FieldSpec):
        self.entity = entity
        self.field = f

    def __call__(self, form: Any, field: Any) -> None:
        if _editing_pk() is None or can_view_sensitive(self.entity.name):
            return
        if is_masked(self.field, field.raw_data[0] if field.raw_data else field.data):
            kept = getattr(form, "_sd_keep_masked", set())
            kept.add(field.name)
            form._sd_keep_masked = kept
            raise StopValidation()


def mask_formatter(entity: EntitySpec, f: FieldSpec, inner: Any = None) -> Any:
    """Return a list/show formatter that masks `f` for users without view_sensitive."""

    def fmt(value: Any) -> Any:
        if not can_view_sensitive(entity.name):
            return mask_value(f, value)
        return inner(value) if inner else value

    return fmt


def picker_filters(entity: EntitySpec, spec: AppSpec) -> dict[str, list[list[Any]]]:
    """Return `*_form_query_rel_fields`: relation pickers offer only visible records."""
    return {
        f.name: [["id", FilterRowRule, no_value]]
        for f in entity.fields
        if f.is_relation and any(r.row_rule(f.to or "") for r in spec.roles)
    }


class SecuredViewMixin:
    """Row rules on actions; masked values never overwrite stored ones."""

    def _get_visible(self, pk: Any) -> Any:
        item = self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)
        if item is None:
            abort(404)
        return item

    @expose("/action/<string:name>/<pk>", methods=["GET", "POST"])
    def action(self, name: str, pk: Any) -> Any:
        if not self.is_get_mutation_allowed():
            flash(gettext(str(FLAMSG_ERR_SEC_ACCESS_DENIED)), "danger")
            return redirect(self.get_redirect())
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

    def prefill_form(self, form: Any, pk: Any) -> None:
        super().prefill_form(form, pk)  # type: ignore[misc]
        entity: EntitySpec = self.entity
        if can_view_sensitive(entity.name):
            return
        for f in entity.sensitive_fields:
            if f.name in form:
                form[f.name].data = mask_value(f, form[f.name].data)

    def process_form(self, form: Any, is_created: bool) -> None:
        super().process_form(form, is_created)  # type: ignore[misc]
        for name in getattr(form, "_sd_keep_masked", ()):
            if name in form:
                del form[name]
