"""Spec -> one Flask-AppBuilder ModelRestApi per entity, at /api/v1/<entity>/.

The APIs use the same view menu and permission names as the CRUD views
(`can_read on customer`, ...), the same row rules (a base filter: someone else's
record is a 404), the same masking of sensitive fields for roles without
`view_sensitive`, and the same field validation, with translated messages.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from flask import request
from flask_appbuilder.api import ModelRestApi
from flask_appbuilder.models.sqla.interface import SQLAInterface
from marshmallow import ValidationError

from app.i18n import N_, gettext
from app.schema.spec import AppSpec, EntitySpec, FieldSpec
from app.security.masking import can_view_sensitive, is_masked, mask_value
from app.security.rows import FilterRowRule, no_value
from app.state import state

PHONE_PATTERN = r"^\+?[0-9][0-9\- ()]{5,30}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
URL_PATTERN = r"^https?://[^\s/$.?#].[^\s]*$"


class FieldValidator:
    """Marshmallow validator of one field's schema options (messages translated)."""

    def __init__(self, entity: EntitySpec, f: FieldSpec):
        self.entity = entity
        self.field = f

    def __call__(self, value: Any) -> None:
        f = self.field
        if value == "" and f.required:
            raise ValidationError(gettext(N_("This field is required.")))
        if value is None or value == "":
            return
        if f.sensitive and is_masked(f, value) and not can_view_sensitive(self.entity.name):
            return  # an unchanged masked value: kept as stored (see pre_update)
        if f.type == "enum" and value not in {c.key for c in f.choices}:
            raise ValidationError(gettext(N_("Not a valid choice.")))
        if isinstance(value, str):
            if f.max_length and len(value) > f.max_length:
                raise ValidationError(
                    gettext(N_("At most %(max)s characters."), max=f.max_length)
                )
            checks = [(f.pattern, N_("Does not match the required format."))]
            if f.type == "phone":
                checks.append((PHONE_PATTERN, N_("Not a valid phone number.")))
            if f.type == "email":
                checks.append((EMAIL_PATTERN, N_("Not a valid email address.")))
            if f.type == "url":
                checks.append((URL_PATTERN, N_("Not a valid URL.")))
            for pattern, message in checks:
                if pattern and not re.match(pattern, value):
                    raise ValidationError(gettext(message))
        if f.type in ("integer", "decimal"):
            if f.min is not None and value < f.min:
                raise ValidationError(gettext(N_("Must be at least %(min)s."), min=f.min))
            if f.max is not None and value > f.max:
                raise ValidationError(gettext(N_("Must be at most %(max)s."), max=f.max))


class EntityApi(ModelRestApi):
    """Base of the generated APIs; `entity` is set on each subclass."""

    entity: EntitySpec
    allow_browser_login = True

    def _mask(self, row: dict[str, Any]) -> None:
        if can_view_sensitive(self.entity.name):
            return
        for f in self.entity.sensitive_fields:
            if f.name in row:
                row[f.name] = mask_value(f, row[f.name])

    def pre_get(self, data: dict[str, Any]) -> None:
        self._mask(data.get("result") or {})

    def pre_get_list(self, data: dict[str, Any]) -> None:
        for row in data.get("result") or []:
            self._mask(row)

    def _relation_errors(self) -> dict[str, list[str]]:
        """Check relation values in the JSON body: ids of records the user can see."""
        from app.security.rows import row_filter

        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return {}
        errors: dict[str, list[str]] = {}
        st = state()
        for f in self.entity.fields:
            if not (f.is_relation or f.type == "user") or body.get(f.name) is None:
                continue
            value = body[f.name]
            ids = value if f.is_many and isinstance(value, list) else [value]
            if any(isinstance(v, bool) or not isinstance(v, int) for v in ids) or (
                not f.is_many and isinstance(value, list)
            ):
                errors[f.name] = [gettext(N_("Not a valid record id."))]
                continue
            if f.type == "user":
                table = st.models.metadata.tables["ab_user"]
                criterion = None
            else:
                table = st.models.table(f.to)  # type: ignore[arg-type]
                criterion = row_filter(f.to, picker=True)  # type: ignore[arg-type]
            query = sa.select(sa.func.count()).select_from(table).where(table.c.id.in_(ids))
            if criterion is not None:
                query = query.where(criterion)
            if st.db.session.execute(query).scalar() != len(set(ids)):
                errors[f.name] = [gettext(N_("No such record."))]
        return errors

    def _unique_errors(self, pk: Any = None) -> dict[str, list[str]]:
        """Refuse a value another record already has (as the UI does), by field."""
        from app.i18n import current_lang

        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return {}
        errors: dict[str, list[str]] = {}
        table = state().models.table(self.entity.name)
        for f in self.entity.fields:
            if not f.unique or f.encrypted or f.is_relation or f.type == "user":
                continue
            value = body.get(f.name)
            if value in (None, "") or isinstance(value, (dict, list)):
                continue
            query = sa.select(table.c.id).where(table.c[f.name] == value)
            if pk is not None:
                query = query.where(table.c.id != pk)
            try:
                clash = state().db.session.execute(query.limit(1)).first()
            except sa.exc.StatementError:  # a value of the wrong type: the schema says so
                state().db.session.rollback()
                continue
            if clash is not None:
                errors[f.name] = [gettext(
                    N_("Another %(entity)s already has this %(field)s."),
                    entity=self.entity.label.get(current_lang()),
                    field=f.label.get(current_lang()),
                )]
        return errors

    def _blank_to_null(self) -> None:
        """Empty strings in optional fields mean "no value", as in the UI's forms."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return
        for f in self.entity.fields:
            if not f.required and body.get(f.name) == "":
                body[f.name] = None

    def post_headless(self) -> Any:
        self._blank_to_null()
        errors = self._relation_errors() or self._unique_errors()
        if errors:
            return self.response_422(message=errors)
        return super().post_headless()

    def put_headless(self, pk: Any) -> Any:
        if self.datamodel.get(pk, self._base_filters) is None:
            return self.response_404()
        self._blank_to_null()
        errors = self._relation_errors() or self._unique_errors(pk)
        if errors:
            return self.response_422(message=errors)
        return super().put_headless(pk)

    def pre_update(self, item: Any) -> None:
        """Keep stored values where a masked value came back unchanged."""
        if can_view_sensitive(self.entity.name):
            return
        body = request.get_json(silent=True) or {}
        for f in self.entity.sensitive_fields:
            if f.name in body and is_masked(f, body[f.name]):
                history = sa.inspect(item).attrs[f.name].history
                if history.deleted:
                    setattr(item, f.name, history.deleted[0])


def _columns(entity: EntitySpec, spec: AppSpec, fields: list[FieldSpec]) -> list[str]:
    """Columns for API output: relations as `<rel>.id` and `<rel>.<title>`."""
    columns = ["id"]
    for f in fields:
        if f.type == "user":
            columns += [f"{f.name}.id", f"{f.name}.username"]
        elif f.is_relation:
            target = spec.entity(f.to)  # type: ignore[arg-type]
            columns.append(f"{f.name}.id")
            if target.title and target.title != "id" and not target.field(target.title).sensitive:
                columns.append(f"{f.name}.{target.title}")
        else:
            columns.append(f.name)
    return columns


def make_api(entity: EntitySpec, model: type, session: Any, spec: AppSpec) -> type[EntityApi]:
    """Generate the ModelRestApi class of one entity."""
    fields = list(entity.fields)
    editable = [f.name for f in fields if not f.readonly]
    searchable = [
        f.name for f in fields if not f.encrypted and not f.sensitive and not f.is_many
    ]
    orderable = [f.name for f in fields if not f.is_relation and f.type != "user"
                 and not f.encrypted and not f.sensitive]
    rel_filters = {
        f.name: [["id", FilterRowRule, no_value]]
        for f in fields
        if f.is_relation and any(r.row_rule(f.to or "") for r in spec.roles)
    }
    show = _columns(entity, spec, fields) + ["created_at", "updated_at"]
    attrs: dict[str, Any] = {
        "entity": entity,
        "datamodel": SQLAInterface(model, session),
        "resource_name": entity.name,
        "class_permission_name": entity.name,
        "method_permission_name": {
            "get_list": "read",
            "get": "read",
            "info": "read",
            "post": "create",
            "put": "update",
            "delete": "delete",
        },
        "list_columns": show,
        "show_columns": show,
        "add_columns": editable,
        "edit_columns": editable,
        "search_columns": searchable,
        "order_columns": orderable + ["id", "created_at", "updated_at"],
        "base_filters": [["id", FilterRowRule, no_value]],
        "add_query_rel_fields": rel_filters,
        "edit_query_rel_fields": rel_filters,
        "validators_columns": {f.name: FieldValidator(entity, f) for f in fields
                               if not f.is_relation and f.type != "user"},
        "openapi_spec_tag": entity.label.en,
    }
    return type(f"{entity.class_name}Api", (EntityApi,), attrs)


def register_apis(app: Any, appbuilder: Any) -> None:
    """Init hook: add one REST API per entity and store them in `state().apis`."""
    st = state()
    for entity in st.spec.entities:
        cls = make_api(entity, st.models.model(entity.name), appbuilder.session, st.spec)
        st.apis[entity.name] = appbuilder.add_api(cls)
