"""Any schema boots with no code: every entity lists, adds, edits, searches, filters, deletes."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

from app.schema.spec import AppSpec, EntitySpec, FieldSpec
from app.state import state
from tests.conftest import CRM, login


def sample_value(f: FieldSpec, ids: dict[str, int], n: int) -> Any:
    """A valid form value for a field (relations point at records made earlier)."""
    token = uuid.uuid4().hex[:8]
    if f.type == "enum":
        return f.default or f.choices[0].key
    if f.type == "boolean":
        return "y"
    if f.type == "integer":
        low = int(f.min) if f.min is not None else 1
        return str(low)
    if f.type == "decimal":
        low = Decimal(f.min) if f.min is not None else Decimal("1")
        return str(low + 1 if f.max is None or low + 1 <= Decimal(f.max) else low)
    if f.type == "date":
        return "2024-03-05"
    if f.type == "datetime":
        return "2024-03-05 10:30:00"
    if f.type == "email":
        return f"u{token}@example.com"
    if f.type == "phone":
        return "138" + str(uuid.uuid4().int)[:8]
    if f.type == "url":
        return f"https://example.com/{token}"
    if f.type == "user":
        return "1"
    if f.type == "relation":
        target = ids.get(f.to or "")
        if target is None:
            return None
        return [str(target)] if f.many else str(target)
    text = f"S{n}-{token}"
    return text[: f.max_length] if f.max_length else text


def creation_order(spec: AppSpec) -> list[EntitySpec]:
    """Entities ordered so each one's relations point at entities made before it."""
    done: list[EntitySpec] = []
    pending = list(spec.entities)
    while pending:
        ready = [
            e
            for e in pending
            if {f.to for f in e.fields if f.is_relation and f.to != e.name}
            <= {d.name for d in done}
        ]
        if not ready:  # a cycle: take the rest as they are
            ready = pending[:]
        done.extend(ready)
        pending = [e for e in pending if e not in ready]
    return done


def form_data(entity: EntitySpec, ids: dict[str, int], n: int) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in entity.fields:
        if f.readonly:
            continue
        value = sample_value(f, ids, n)
        if value is not None:
            data[f.name] = value
    return data


def walk_every_entity(app: Flask) -> None:
    with app.test_client() as client:
        login(client)
        with app.app_context():
            spec = state().spec
        ids: dict[str, int] = {}
        for entity in creation_order(spec):
            data = form_data(entity, ids, 1)
            response = client.post(f"/{entity.name}/add", data=data)
            assert response.status_code == 302, (entity.name, response.data.decode()[-2500:])
            with app.app_context():
                model = state().models.model(entity.name)
                record = state().db.session.query(model).order_by(model.id.desc()).first()
                assert record is not None, entity.name
                ids[entity.name] = record.id
                title = str(record)
            listing = client.get(f"/{entity.name}/list/")
            assert listing.status_code == 200
            if entity.title in entity.list:
                assert title in listing.data.decode(), entity.name
            assert client.get(f"/{entity.name}/show/{ids[entity.name]}").status_code == 200
            if entity.search:
                first = entity.search[0]
                value = data.get(first)
                if isinstance(value, str) and entity.title in entity.list:
                    found = client.get(f"/{entity.name}/list/", query_string={"q": value[1:]})
                    assert title in found.data.decode(), (entity.name, "search")
            for column in entity.filters:
                response = client.get(
                    f"/{entity.name}/list/", query_string={f"_flt_0_{column}": "x"}
                )
                assert response.status_code == 200, (entity.name, column)
            edited = form_data(entity, ids, 2)
            response = client.post(f"/{entity.name}/edit/{ids[entity.name]}", data=edited)
            assert response.status_code == 302, (entity.name, response.data.decode()[-2500:])
        client.get("/lang/zh")
        for entity in spec.entities:
            page = client.get(f"/{entity.name}/list/").data.decode()
            assert entity.label.zh in page, entity.name
        for entity in reversed(creation_order(spec)):
            extra = form_data(entity, ids, 3)
            client.post(f"/{entity.name}/add", data=extra)
            with app.app_context():
                model = state().models.model(entity.name)
                newest = (
                    state().db.session.query(model.id).order_by(model.id.desc()).limit(1).scalar()
                )
            response = client.post(f"/{entity.name}/delete/{newest}")
            assert response.status_code == 302
            with app.app_context():
                assert state().db.session.get(model, newest) is None, entity.name


def test_library_schema_every_entity(library_app: Flask) -> None:
    walk_every_entity(library_app)


@pytest.mark.parametrize("schema", [CRM])
def test_crm_schema_every_entity(schema: Any, sqlite_crm_app: Flask) -> None:
    walk_every_entity(sqlite_crm_app)
