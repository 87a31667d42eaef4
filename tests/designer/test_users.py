"""Users and roles in the browser: roles picked by their labels, the person's record linked.

Generated from the schemas: the account entity is whichever entity has a
`user` field (the CRM's employee, the library's staff).
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.context import Actor, acting_as
from app.records import records
from app.security.user_links import FIELD_PREFIX, account_entities
from app.state import state
from tests.conftest import CRM, LIBRARY, login

STRONG = "Kettle-Orbit-Violet-42"


def make_people(app, count: int = 2) -> tuple[str, str, list[int]]:
    """Records of the account entity, made through the record service as the admin."""
    with app.app_context(), acting_as(Actor(user_id=1, name="admin", source="cli")):
        entity, user_field = account_entities()[0]
        admin = state().db.session.get(_user_model(), 1)
        svc = records(entity.name, user=admin)
        ids = []
        for i in range(count):
            values = {}
            for f in entity.fields:
                if f.required and f.type in ("string", "text"):
                    values[f.name] = f"人员{i}-{f.name}"[: f.max_length or 40]
            ids.append(svc.create(values).id)
        return entity.name, user_field.column_name, ids


def _user_model():
    from flask_appbuilder.security.sqla.models import User

    return User


def linked_user(app, entity: str, column: str, record_id: int) -> int | None:
    with app.app_context(), state().db.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT {column} FROM {entity} WHERE id = :i"),
                            {"i": record_id}).scalar()


def form_fields(role_id: int, **extra: str) -> dict:
    return {"first_name": "Li", "last_name": "Lei", "username": "lilei",
            "email": "lilei@example.com", "active": "y", "roles": [str(role_id)], **extra}


@pytest.mark.parametrize("schema", [CRM, LIBRARY], ids=["crm", "library"])
def test_user_form_roles_by_label_and_record_link(app_factory, schema):
    app = app_factory(schema, "sqlite")
    entity, column, (first, second) = make_people(app)
    with app.app_context():
        yaml_role = state().spec.roles[0]
        role_id = state().db.session.execute(
            sa.text("SELECT id FROM ab_role WHERE name = :n"), {"n": yaml_role.name}).scalar()
        label_en = yaml_role.label.get("en")
    with app.test_client() as client:
        login(client)
        page = client.get("/users/add").data.decode()
        assert re.search(rf'<option[^>]*value="{role_id}"[^>]*>\s*{re.escape(label_en)}', page)
        assert f'name="{FIELD_PREFIX}{entity}"' in page and f'value="{first}"' in page

        response = client.post("/users/add", data=form_fields(
            role_id, password=STRONG, conf_password=STRONG, **{FIELD_PREFIX + entity: str(first)}))
        assert response.status_code == 302, response.data.decode()[:2000]
        with app.app_context():
            user_id = state().db.session.execute(
                sa.text("SELECT id FROM ab_user WHERE username = 'lilei'")).scalar()
        assert user_id and linked_user(app, entity, column, first) == user_id

        edit = client.get(f"/users/edit/{user_id}").data.decode()
        assert re.search(rf'<option[^>]*selected[^>]*value="{first}"|'
                         rf'<option[^>]*value="{first}"[^>]*selected', edit)
        # move the link to the other record and deactivate the account
        data = form_fields(role_id, **{FIELD_PREFIX + entity: str(second)})
        data.pop("active")
        response = client.post(f"/users/edit/{user_id}", data=data)
        assert response.status_code == 302, response.data.decode()[:2000]
        assert linked_user(app, entity, column, second) == user_id
        assert linked_user(app, entity, column, first) is None
        with app.app_context():
            active = state().db.session.execute(
                sa.text("SELECT active FROM ab_user WHERE id = :i"), {"i": user_id}).scalar()
        assert not active

        # an admin's password reset keeps the policy: a weak one is refused
        reset = f"/resetpassword/form?pk={user_id}"
        weak = client.post(reset, data={"password": "abc", "conf_password": "abc"})
        assert weak.status_code == 200
        strong = client.post(reset, data={"password": STRONG + "x", "conf_password": STRONG + "x"})
        assert strong.status_code == 302
