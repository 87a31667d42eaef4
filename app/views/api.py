"""Spec -> one Flask-AppBuilder ModelRestApi per entity, at /api/v1/<entity>/.

An adapter over the record service: reads use FAB's query machinery with the
service's row rule as a base filter and the service's masking on every
response; writes (POST, PUT, DELETE) are the service's `create`, `update` and
`delete`, so the API validates, defaults, scopes and audits exactly as the
forms and the importer do. Records carry `ETag: "<version>"`; a PUT, DELETE or
workflow step (`POST /api/v1/<entity>/<id>/transition/<name>`) with `If-Match`
on a stale version is refused with 412.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_appbuilder.api import ModelRestApi, expose, safe
from flask_appbuilder.security.decorators import protect

from app.i18n import N_, gettext
from app.records import Conflict, RecordError, records
from app.records.rollups import computed_message
from app.records.service import conflict_message
from app.records.values import CellError, parse_input
from app.schema.spec import AppSpec, EntitySpec, FieldSpec
from app.security.views import FilterRowRule, no_value
from app.state import state
from app.views.crud import SpecInterface


def etag(version: Any) -> str:
    return f'"{version}"'


def if_match_version() -> int | None | str:
    """The version named by `If-Match` (None without one; "bad" when unreadable)."""
    header = request.headers.get("If-Match")
    if not header or header.strip() == "*":
        return None
    text = header.strip().removeprefix("W/").strip('"')
    return int(text) if text.isdigit() else "bad"


class EntityApi(ModelRestApi):
    """Base of the generated APIs; `entity` is set on each subclass."""

    entity: EntitySpec
    allow_browser_login = True

    # -- reads: FAB's queries, the service's row rule and masking -----------------

    def _mask(self, row: dict[str, Any]) -> None:
        service = records(self.entity.name)
        for f in self.entity.sensitive_fields:
            if f.name in row:
                row[f.name] = service.show(f, row[f.name])

    def pre_get(self, data: dict[str, Any]) -> None:
        self._mask(data.get("result") or {})

    def pre_get_list(self, data: dict[str, Any]) -> None:
        for row in data.get("result") or []:
            self._mask(row)

    def get_headless(self, pk: Any, **kwargs: Any) -> Any:
        response = super().get_headless(pk, **kwargs)
        if response.status_code == 200:
            version = (response.json or {}).get("result", {}).get("version")
            if version is not None:
                response.headers["ETag"] = etag(version)
        return response

    # -- writes: the record service ---------------------------------------------

    def _body(self) -> tuple[dict[str, Any], dict[str, list[str]]]:
        """Parse the JSON body into field values; return (values, errors)."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return {}, {"_body": [gettext(N_("Send a JSON object of field values."))]}
        writable = {f.name: f for f in self.entity.fields if not f.readonly}
        values: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name, raw in body.items():
            f = writable.get(name)
            if f is None and self.entity.has_field(name) and self.entity.field(name).computed:
                errors[name] = [computed_message()]  # a rollup or classified field
                continue
            if f is None:
                if name not in ("id", "version"):
                    errors[name] = [gettext(N_("Unknown field."))]
                continue
            if f.is_relation or f.type == "user":
                values[name] = raw
                continue
            try:
                values[name] = parse_input(raw, f)
            except CellError as exc:
                errors[name] = [gettext(exc.message, **exc.params)]
        if errors:  # report every field's problem at once, not just the unreadable ones
            errors = {**records(self.entity.name).validate(values, partial=True), **errors}
        return values, errors

    def _record_response(self, obj: Any, status: int) -> Any:
        service = records(self.entity.name)
        response = self.response(status, id=obj.id, result=service.present(obj))
        response.headers["ETag"] = etag(obj.version)
        return response

    def _refused(self, exc: RecordError) -> Any:
        if exc.status == 404:
            return self.response_404()
        if exc.status == 403:
            return self.response(403, message=exc.message)
        if isinstance(exc, Conflict):
            status = 412 if request.headers.get("If-Match") else 409
            return self.response(status, message=exc.message)
        return self.response_422(message=exc.errors or {"_record": [exc.message]})

    def post_headless(self) -> Any:
        values, errors = self._body()
        if errors:
            return self.response_422(message=errors)
        try:
            obj = records(self.entity.name).create(values)
        except RecordError as exc:
            return self._refused(exc)
        return self._record_response(obj, 201)

    def put_headless(self, pk: Any) -> Any:
        service = records(self.entity.name)
        expected = if_match_version()
        try:
            # without If-Match, last write wins: queue behind other writers of the row
            obj = service.get(pk, "update", lock=expected is None)
        except RecordError as exc:
            return self._refused(exc)
        if expected == "bad":
            return self.response(412, message=gettext(N_("If-Match must be an ETag of this "
                                                         "record.")))
        values, errors = self._body()
        if errors:
            return self.response_422(message=errors)
        try:
            obj = service.update(obj, values, expected_version=expected)  # type: ignore[arg-type]
        except RecordError as exc:
            return self._refused(exc)
        return self._record_response(obj, 200)

    @expose("/<pk>/transition/<name>", methods=["POST"])
    @protect()
    @safe
    def transition(self, pk: Any, name: str) -> Any:
        """Take workflow step `name` on a record; answers like PUT (masked record, ETag).
        ---
        post:
          description: >-
            Take a workflow step (状态流转) on a record. Send `If-Match` with the
            record's ETag to refuse a stale step (412).
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          - in: path
            schema:
              type: string
            name: name
          requestBody:
            required: false
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    comment:
                      type: string
          responses:
            200:
              description: The step was taken; the record as PUT answers it
            401:
              $ref: '#/components/responses/401'
            403:
              description: The user's role may not take this step
            404:
              $ref: '#/components/responses/404'
            409:
              description: The record is not in a state the step leaves from
            412:
              description: If-Match names an older version of the record
            422:
              $ref: '#/components/responses/422'
        """
        service = records(self.entity.name)
        expected = if_match_version()
        try:
            obj = service.get(pk, "update", lock=True)
        except RecordError as exc:
            return self._refused(exc)
        if expected == "bad" or (expected is not None and expected != obj.version):
            return self.response(412, message=conflict_message())
        body = request.get_json(silent=True) if request.data else {}
        comment = body.get("comment") if isinstance(body, dict) else None
        if body is None or not isinstance(body, dict) or not isinstance(comment, str | None):
            return self.response_422(message={"_body": [gettext(N_(
                'Send a JSON object, optionally with a "comment" text.'))]})
        try:
            obj = service.transition(obj, name, comment)
        except Conflict as exc:  # the state moved on: not a stale If-Match (checked above)
            return self.response(409, message=exc.message)
        except RecordError as exc:
            return self._refused(exc)
        return self._record_response(obj, 200)

    @expose("/<pk>/erase", methods=["POST"])
    @protect()
    @safe
    def erase(self, pk: Any) -> Any:
        """Erase a data subject (admins only): delete or anonymise it, destroy its key.
        ---
        post:
          description: >-
            Erase (数据销毁) a record of a `subject:` entity as the schema says
            (delete or anonymise) and destroy its key, so every copy of its
            sealed values (audit log, backups) becomes unreadable. Admins only.
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          responses:
            200:
              description: Erased; what was done (no personal values)
            401:
              $ref: '#/components/responses/401'
            403:
              description: Only administrators may erase
            404:
              $ref: '#/components/responses/404'
            422:
              $ref: '#/components/responses/422'
        """
        from app.privacy.views import api_erase

        return api_erase(self, pk)

    def delete_headless(self, pk: Any) -> Any:
        service = records(self.entity.name)
        try:
            obj = service.get(pk, "delete")
            expected = if_match_version()
            if expected is not None and expected != obj.version:
                raise Conflict(gettext(N_("Someone else changed this record since you opened "
                                          "it. Reload it to see their change, then make yours "
                                          "again.")))
            service.delete(obj)
        except RecordError as exc:
            return self._refused(exc)
        return self.response(200, message="OK")


def _columns(entity: EntitySpec, spec: AppSpec, fields: list[FieldSpec]) -> list[str]:
    """Columns for API output: relations as `<rel>.id` and `<rel>.<title>`."""
    columns = ["id"]
    for f in fields:
        if f.type == "user":
            columns += [f"{f.name}.id", f"{f.name}.username"]
        elif f.is_relation and f.to == entity.name and not f.is_many:
            columns.append(f.column_name)  # FAB cannot join a table to itself by a dotted name
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
        if f.is_relation
    }
    show = _columns(entity, spec, fields) + ["version", "created_at", "updated_at"]
    attrs: dict[str, Any] = {
        "entity": entity,
        "datamodel": SpecInterface(model, session, entity),
        "resource_name": entity.name,
        "class_permission_name": entity.name,
        "method_permission_name": {
            "get_list": "read",
            "get": "read",
            "info": "read",
            "post": "create",
            "put": "update",
            "delete": "delete",
            "transition": "update",
            "erase": "delete",
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
        "openapi_spec_tag": entity.label.en,
    }
    return type(f"{entity.class_name}Api", (EntityApi,), attrs)


def register_apis(app: Any, appbuilder: Any) -> None:
    """Init hook: add one REST API per entity and store them in `state().apis`."""
    st = state()
    for entity in st.spec.entities:
        cls = make_api(entity, st.models.model(entity.name), appbuilder.session, st.spec)
        st.apis[entity.name] = appbuilder.add_api(cls)
