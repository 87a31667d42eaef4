"""An operator's import: rows that would land outside the operator's reach are
refused with their line, and the chunk written again keeps the others whole
(their sealed values under keys that exist)."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from app.context import Actor, acting_as
from app.io.importer import import_file
from app.privacy.keys import forget, is_token, key_id_of, unseal
from app.state import state
from tests.conftest import ADMIN_PASSWORD


def _employee(token: str, account_id: int | None) -> None:
    employees = state().models.table("employee")
    state().db.session.execute(sa.insert(employees).values(
        name=f"Emp {token}", employee_no=token, account_id=account_id,
        created_at=sa.func.now(), updated_at=sa.func.now()))


def test_rows_outside_the_operators_reach_are_refused_and_the_rest_stay_sealed(
        crm_app: Flask, tmp_path: Path) -> None:
    token, other = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    username = f"op_{token}"
    with crm_app.app_context():
        sm = crm_app.appbuilder.sm
        user_id = sm.add_user(username, "Op", "Erator", f"{username}@example.com",
                              sm.find_role("operator"), password=ADMIN_PASSWORD).id
        _employee(token, user_id)
        _employee(other, None)
        state().db.session.commit()
    phones = [f"139{uuid.uuid4().int % 10**8:08d}" for _ in range(2)]
    path = tmp_path / "scope.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["name", "phone", "owner"],
                                  [f"Mine {token}", phones[0], f"Emp {token}"],
                                  [f"Theirs {token}", phones[1], f"Emp {other}"]])
    with crm_app.app_context(), acting_as(Actor(user_id, username, "cli")):
        result = import_file("customer", path)
        state().db.session.remove()
    assert (result.created, result.rejected) == (1, 1), result.problems
    assert [p.line for p in result.problems] == [3]
    with crm_app.app_context():
        customers = state().models.table("customer")
        stored = state().db.session.execute(
            sa.select(customers.c.name, sa.type_coerce(customers.c.phone, sa.Text))
            .where(customers.c.name.like(f"% {token}"))).all()
        state().db.session.remove()
        assert [name for name, _ in stored] == [f"Mine {token}"]
        token_value = stored[0][1]  # as stored: a sealed token
        assert is_token(token_value)
        forget([key_id_of(token_value)])  # read the key back from the database
        assert unseal(token_value) == phones[0]
