"""Helpers of the notification tests: accounts with an employee record, CRM records."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask

from app.records.service import records
from app.state import state
from tests.conftest import ADMIN_PASSWORD


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def make_person(app: Flask, role: str, lang: str | None = None) -> dict[str, Any]:
    """An account with `role`, its e-mail, an employee record linked to it, a language."""
    from app.notify.center import remember_language

    with app.app_context():
        sm = app.appbuilder.sm
        name = unique(f"{role}-")
        user = sm.add_user(name, role, "T", f"{name}@example.com", sm.find_role(role),
                           password=ADMIN_PASSWORD)
        employee = records("employee", None).create(
            {"name": name, "employee_no": unique("E"), "account": user.id})
        if lang:
            remember_language(user.id, lang)
        person = {"username": name, "user_id": user.id, "employee_id": employee.id,
                  "email": f"{name}@example.com"}
        state().db.session.remove()
    return person


def add_record(app: Flask, entity: str, values: dict[str, Any]) -> int:
    """Create a record through the record service as the system (no signed-in user)."""
    with app.app_context():
        obj = records(entity, None).create(values)
        record_id = int(obj.id)
        state().db.session.remove()
    return record_id


def login_as(client: Any, username: str) -> Any:
    from tests.conftest import login

    return login(client, username, ADMIN_PASSWORD)
