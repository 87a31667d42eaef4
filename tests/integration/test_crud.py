"""Generated CRUD screens on every backend."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Flask

from app.state import state


def unique_phone() -> str:
    return "139" + str(uuid.uuid4().int)[:8]


def test_admin_creates_customer_and_sees_it_in_list(crm_app: Flask, admin_client) -> None:
    name = f"华为技术-{uuid.uuid4().hex[:6]}"
    response = admin_client.post(
        "/customer/add",
        data={"name": name, "kind": "company", "phone": unique_phone(), "points": "0"},
    )
    assert response.status_code == 302
    page = admin_client.get("/customer/list/").data.decode()
    assert name in page
    with crm_app.app_context():
        table = state().models.table("customer")
        row = state().db.session.execute(sa.select(table).where(table.c.name == name)).one()
        assert row.kind == "company"
        assert row.created_by_id is not None


def test_search_box_matches_search_fields(crm_app: Flask, admin_client) -> None:
    token = uuid.uuid4().hex[:8]
    admin_client.post(
        "/customer/add", data={"name": f"Acme {token}", "kind": "company", "points": "0"}
    )
    admin_client.post("/customer/add", data={"name": "Other Co", "kind": "company", "points": "0"})
    page = admin_client.get(f"/customer/list/?q={token.upper()}").data.decode()
    assert f"Acme {token}" in page
    assert "Other Co" not in page


def test_required_and_unique_give_friendly_messages(crm_app: Flask, admin_client) -> None:
    phone = unique_phone()
    assert (
        admin_client.post(
            "/customer/add", data={"name": "A", "kind": "company", "phone": phone, "points": "0"}
        ).status_code
        == 302
    )
    page = admin_client.post(
        "/customer/add", data={"name": "B", "kind": "company", "phone": phone, "points": "0"}
    ).data.decode()
    assert "already has this" in page
    page = admin_client.post("/customer/add", data={"name": "", "kind": "company"}).data.decode()
    assert "This field is required" in page


def test_edit_and_delete(crm_app: Flask, admin_client) -> None:
    name = f"Edit-{uuid.uuid4().hex[:6]}"
    admin_client.post("/customer/add", data={"name": name, "kind": "person", "points": "0"})
    with crm_app.app_context():
        model = state().models.model("customer")
        pk = state().db.session.query(model.id).filter_by(name=name).scalar()
    response = admin_client.post(
        f"/customer/edit/{pk}", data={"name": name + "x", "kind": "person", "points": "5"}
    )
    assert response.status_code == 302
    assert admin_client.get(f"/customer/show/{pk}").status_code == 200
    assert admin_client.post(f"/customer/delete/{pk}").status_code == 302
    with crm_app.app_context():
        assert state().db.session.get(state().models.model("customer"), pk) is None


def test_chinese_text_round_trips(crm_app: Flask, admin_client) -> None:
    name = "北京字节跳动科技有限公司-" + uuid.uuid4().hex[:4]
    admin_client.post(
        "/customer/add",
        data={"name": name, "kind": "company", "points": "0", "address": "北京市海淀区知春路"},
    )
    with crm_app.app_context():
        model = state().models.model("customer")
        assert (
            state().db.session.query(model).filter_by(name=name).one().address
            == "北京市海淀区知春路"
        )


def test_lang_switch_shows_chinese_labels(crm_app: Flask, admin_client) -> None:
    admin_client.get("/lang/zh")
    page = admin_client.get("/customer/list/").data.decode()
    assert "客户" in page and "名称" in page
    admin_client.get("/lang/en")
    page = admin_client.get("/customer/list/").data.decode()
    assert "Customer" in page


def test_every_entity_lists_adds_and_shows(crm_app: Flask, admin_client) -> None:
    for entity in state_entities(crm_app):
        assert admin_client.get(f"/{entity}/list/").status_code == 200, entity
        assert admin_client.get(f"/{entity}/add").status_code == 200, entity


def state_entities(app: Flask) -> list[str]:
    with app.app_context():
        return [e.name for e in state().spec.entities]
