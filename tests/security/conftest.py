"""Helpers for the security tests: users with YAML roles, records owned by them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask

from app.state import state

PASSWORD = "Str0ng-Pass-2024!"


def make_user(app: Flask, role: str, username: str | None = None) -> Any:
    """Create a login with `role`; return its id and username."""
    username = username or f"{role}_{uuid.uuid4().hex[:6]}"
    with app.app_context():
        sm = app.appbuilder.sm
        user = sm.add_user(username, username, "T", f"{username}@example.com",
                           sm.find_role(role), password=PASSWORD)
        assert user, f"could not create {username}"
        return user.id, username


def add_row(app: Flask, entity: str, **values: Any) -> int:
    """Insert a row through the ORM; return its id."""
    with app.app_context():
        session = state().db.session
        obj = state().models.model(entity)()
        for key, value in values.items():
            setattr(obj, key, value)
        session.add(obj)
        session.commit()
        return obj.id


def employee_for(app: Flask, user_id: int) -> int:
    """An employee linked to the login `user_id`."""
    token = uuid.uuid4().hex[:8]
    return add_row(app, "employee", name=f"E{token}", employee_no=token, account_id=user_id)


@pytest.fixture
def client_for() -> Any:
    """`client_for(app, username)` -> a logged-in English test client."""
    from tests.conftest import login

    def factory(app: Flask, username: str) -> Any:
        client = app.test_client()
        return login(client, username, PASSWORD)

    return factory
