"""`schemadesk demo seed`: demo logins per role linked to their records, dates around today.

Walks the roles and row rules of both shipped schemas (no CRM names in the checks
but the one about customers per operator), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.demo import demo, linked_entities, owner_fields
from app.records import records
from app.records.display import local_today
from app.state import state
from tests.conftest import CRM, LIBRARY, login


def seed(app: Flask) -> tuple[str, list[str]]:
    result = app.test_cli_runner().invoke(demo, ["seed", "--rows", "20", "--seed", "3"])
    assert result.exit_code == 0, result.output
    password = re.search(r"Demo-[A-Za-z0-9]{12}", result.output)
    assert password, result.output
    assert result.output.rstrip().endswith(password.group(0))  # printed last
    usernames = re.findall(r"^  (\S+)\s", result.output, re.M)
    return password.group(0), usernames


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("schema", [CRM, LIBRARY], ids=["crm", "library"])
def test_demo_seed_makes_a_working_login_per_role(
    app_factory: Any, schema: Path, backend: str
) -> None:
    app = app_factory(schema, backend)
    password, usernames = seed(app)
    with app.app_context():
        spec = state().spec
        sm = app.appbuilder.sm
        session = state().db.session
        for role in spec.roles:
            logins = [u for u in usernames if re.fullmatch(rf"{role.name}\d", u)]
            assert logins, role.name
            for username in logins:
                user = sm.find_user(username=username)
                assert [r.name for r in user.roles] == [role.name]
                for entity_name in linked_entities(role, spec):
                    entity = spec.entity(entity_name)
                    table = state().models.table(entity_name)
                    linked = session.execute(
                        sa.select(sa.func.count())
                        .select_from(table)
                        .where(table.c[entity.user_field.column_name] == user.id)
                    ).scalar_one()
                    assert linked == 1, (username, entity_name)
                for entity, f in owner_fields(role, spec):
                    reached = records(entity.name, user).query().count()
                    assert reached >= (1 if f.type == "user" else 8), (username, entity.name)
                    if entity.name == "customer":
                        assert 30 <= reached <= 100
        session.remove()
    for username in usernames:
        with app.test_client() as client:
            login(client, username, password)
            assert client.get("/dashboard/").status_code == 200


def test_demo_dates_are_around_today(app_factory: Any) -> None:
    app = app_factory(CRM, "sqlite")
    seed(app)
    today = local_today()
    with app.app_context():
        for entity in state().spec.entities:
            table = state().models.table(entity.name)
            for f in entity.fields:
                if f.type != "date" or "birth" in f.name:
                    continue
                low, high = (
                    state()
                    .db.session.execute(
                        sa.select(sa.func.min(table.c[f.name]), sa.func.max(table.c[f.name]))
                    )
                    .one()
                )
                if low is None:
                    continue
                low, high = (
                    v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)[:10])
                    for v in (low, high)
                )
                assert low >= today - dt.timedelta(days=14), (entity.name, f.name, low)
                assert high <= today + dt.timedelta(days=28), (entity.name, f.name, high)
        state().db.session.remove()


def test_empty_dashboard_shows_getting_started_until_there_is_data(app_factory: Any) -> None:
    app = app_factory(CRM, "sqlite")
    with app.test_client() as client:
        login(client)
        client.get("/lang/zh")
        page = client.get("/dashboard/").data.decode()
        assert "快速上手" in page and "schemadesk demo seed" in page
        assert "/users/list/" in page and "/employee/list/" in page
        client.get("/lang/en")
        assert "Getting started" in client.get("/dashboard/").data.decode()
    seed(app)
    with app.test_client() as client:
        login(client)
        assert "schemadesk demo seed" not in client.get("/dashboard/").data.decode()
