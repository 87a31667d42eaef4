"""Generated permission walk: every role × every entity × every action, UI and API.

For both shipped schemas, each role of the YAML (and Admin) gets an account that
owns one record of every entity (so row rules leave it something to see). Every
generated endpoint is then called: granted -> 2xx/3xx (not to the login page),
not granted -> 403/404 or a redirect to the login page. Figures are printed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from flask import Flask

from app.schema.spec import AppSpec, EntitySpec, FieldSpec
from app.state import state
from tests.conftest import CRM, LIBRARY
from tests.security.conftest import PASSWORD, make_user

CHECKED: dict[str, int] = {}


def value_for(f: FieldSpec) -> Any:
    token = uuid.uuid4().hex
    if f.type == "enum":
        return f.choices[0].key
    if f.type == "integer":
        return int(f.min) if f.min is not None else 1
    if f.type == "decimal":
        return int(f.min) if f.min is not None else 1
    if f.type == "boolean":
        return True
    if f.type == "date":
        return dt.date(2024, 5, 1)
    if f.type == "datetime":
        return dt.datetime(2024, 5, 1, 9, 30)
    if f.type == "phone":
        return "139" + str(uuid.uuid4().int)[:8]
    if f.type == "email":
        return f"u{token[:8]}@example.com"
    if f.type == "url":
        return f"https://{token[:8]}.example.com"
    return token[: min(f.max_length or 12, 12)]


def me_paths(cond: Any) -> list[str]:
    """The fields named by `$me.<path>` values in a condition."""
    if cond.kind != "cmp":
        return [p for item in cond.items for p in me_paths(item)]
    value = cond.value
    return value[4:].split(".") if isinstance(value, str) and value.startswith("$me.") else []


class Owner:
    """Creates records owned (per every row rule of the schema) by one account."""

    def __init__(self, app: Flask, user_id: int):
        self.app = app
        self.user_id = user_id
        self.cache: dict[str, int] = {}

    def ownership_fields(self, spec: AppSpec, entity: EntitySpec) -> set[str]:
        """Every relation a row rule's path (or its `$me.<path>` value) walks through."""
        names: set[str] = set()
        for role in spec.roles:
            for rule in role.rows:
                names |= {part for path in rule.condition.fields() for part in path}
                names |= set(me_paths(rule.condition))
        return names

    def create(self, entity_name: str, fresh: bool = False) -> int:
        if not fresh and entity_name in self.cache:
            return self.cache[entity_name]
        with self.app.app_context():
            return self._create(entity_name, fresh)

    def _create(self, entity_name: str, fresh: bool) -> int:
        st = state()
        entity = st.spec.entity(entity_name)
        owned = self.ownership_fields(st.spec, entity)
        obj = st.models.model(entity_name)()
        for f in entity.fields:
            if f.type == "user":
                setattr(obj, f.column_name, self.user_id)
            elif f.is_many:
                continue
            elif f.is_relation:
                if f.required or f.name in owned:
                    setattr(obj, f.column_name, self.create(f.to))  # type: ignore[arg-type]
            elif f.required or f.sensitive:
                setattr(obj, f.name, value_for(f))
        st.db.session.add(obj)
        st.db.session.commit()
        if not fresh:
            self.cache[entity_name] = obj.id
        return obj.id

    def payload(self, entity_name: str) -> dict[str, Any]:
        """A JSON body that creates a valid record through the API."""
        with self.app.app_context():
            spec = state().spec
        entity = spec.entity(entity_name)
        body: dict[str, Any] = {}
        owned = self.ownership_fields(spec, entity)
        for f in entity.fields:
            if f.is_many or f.type == "user" or f.readonly:
                continue
            if f.is_relation:
                if f.required or f.name in owned:
                    body[f.name] = self.create(f.to)  # type: ignore[arg-type]
            elif f.required:
                value = value_for(f)
                body[f.name] = value.isoformat() if hasattr(value, "isoformat") else value
        return body


def granted(status: int, location: str) -> bool:
    return 200 <= status < 400 and "/login" not in location


def refused(status: int, location: str) -> bool:
    return status in (401, 403, 404) or (status in (302, 303) and "/login" in location)


def check(expect: bool, response: Any, what: str) -> None:
    location = response.headers.get("Location", "")
    ok = granted(response.status_code, location) if expect else refused(
        response.status_code, location)
    assert ok, f"{what}: expected {'allowed' if expect else 'refused'}, got " \
               f"{response.status_code} {location} {response.data[:300]!r}"


def walk(app: Flask, schema_name: str) -> int:
    checks = 0
    with app.app_context():
        spec = state().spec
    roles = [(r.name, r) for r in spec.roles] + [("Admin", None)]
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    if True:
        for role_name, role_spec in roles:
            uid, username = make_user(app, role_name)
            owner = Owner(app, uid)
            for entity in spec.entities:
                owner.create(entity.name)
            ui = app.test_client()
            assert ui.post("/login/", data={"username": username,
                                            "password": PASSWORD}).status_code == 302
            api = app.test_client()
            token = api.post("/api/v1/security/login", json={
                "username": username, "password": PASSWORD, "provider": "db"}).json
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            for entity in spec.entities:
                e = entity.name
                acts = role_spec.actions_on(e) if role_spec else frozenset(
                    ("read", "create", "update", "delete", "import", "export",
                     "view_sensitive"))
                pk = owner.cache[e]
                label = f"{schema_name}:{role_name}:{e}"
                calls: list[tuple[str, Any, str, dict[str, Any]]] = [
                    ("read", ui.get, f"/{e}/list/", {}),
                    ("read", ui.get, f"/{e}/show/{pk}", {}),
                    ("create", ui.get, f"/{e}/add", {}),
                    ("update", ui.get, f"/{e}/edit/{pk}", {}),
                    ("read", api.get, f"/api/v1/{e}/", {"headers": headers}),
                    ("read", api.get, f"/api/v1/{e}/{pk}", {"headers": headers}),
                    ("update", api.put, f"/api/v1/{e}/{pk}", {"json": {}, "headers": headers}),
                    ("create", api.post, f"/api/v1/{e}/",
                     {"json": owner.payload(e), "headers": headers}),
                ]
                if f"/{e}/import" in routes:
                    calls.append(("import", ui.get, f"/{e}/import", {}))
                if f"/{e}/export" in routes:
                    calls.append(("export", ui.get, f"/{e}/export?format=csv", {}))
                for action, method, url, kwargs in calls:
                    check(action in acts, method(url, **kwargs), f"{label}:{action} {url}")
                    checks += 1
                # delete, on throwaway records, UI and API
                victim = owner.create(e, fresh=True)
                check("delete" in acts, ui.post(f"/{e}/delete/{victim}"), f"{label}:delete")
                victim2 = owner.create(e, fresh=True)
                check("delete" in acts, api.delete(f"/api/v1/{e}/{victim2}", headers=headers),
                      f"{label}:api-delete")
                checks += 2
                with app.app_context():
                    model = state().models.model(e)
                    gone = state().db.session.get(model, victim) is None
                assert gone == ("delete" in acts), f"{label}: UI delete effect"
                # view_sensitive: API detail shows clear or masked values
                sensitive = [f for f in entity.sensitive_fields if not f.is_relation]
                if sensitive and "read" in acts:
                    row = api.get(f"/api/v1/{e}/{pk}", headers=headers).json["result"]
                    with app.app_context():
                        stored = getattr(state().db.session.get(model, pk), sensitive[0].name)
                    shown = row[sensitive[0].name]
                    assert (shown == stored) == ("view_sensitive" in acts), \
                        f"{label}: view_sensitive {shown!r} vs {stored!r}"
                    checks += 1
    return checks


@pytest.mark.parametrize("schema", [CRM, LIBRARY], ids=["crm", "library"])
def test_every_role_every_endpoint(app_factory, schema) -> None:
    app = app_factory(schema, "sqlite")
    checks = walk(app, schema.stem)
    CHECKED[schema.stem] = checks
    print(f"\n{schema.stem}: {checks} endpoint checks across roles")
    assert checks > 100
