"""The erase API (admins only), the record page's erase button with typed confirmation,
the retention page and its CSV report, and the audit page of an erased record."""

from __future__ import annotations

import random

import sqlalchemy as sa
from flask import Flask

from app.records import records
from app.state import state
from tests.conftest import login
from tests.security.conftest import PASSWORD, make_user


def customer(app: Flask, name: str) -> tuple[int, str]:
    id_no = f"VID{random.randrange(10**9, 10**10)}"
    with app.app_context():
        return records("customer", None).create(
            {"name": name, "kind": "person", "id_no": id_no}).id, id_no


def bearer(client, username: str, password: str) -> dict[str, str]:
    response = client.post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db"})
    assert response.status_code == 200, response.data
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def test_api_erase_is_for_admins_and_answers_without_personal_values(crm_app: Flask) -> None:
    from tests.conftest import ADMIN_PASSWORD

    pk, id_no = customer(crm_app, "接口客户")
    _, manager = make_user(crm_app, "manager")
    client = crm_app.test_client()
    refused = client.post(f"/api/v1/customer/{pk}/erase",
                          headers=bearer(client, manager, PASSWORD))
    assert refused.status_code == 403
    response = client.post(f"/api/v1/customer/{pk}/erase",
                           headers=bearer(client, "admin", ADMIN_PASSWORD))
    assert response.status_code == 200, response.data
    result = response.json["result"]
    assert result["mode"] == "anonymise" and result["keys_destroyed"] >= 1
    assert "接口客户" not in response.get_data(as_text=True)
    assert id_no not in response.get_data(as_text=True)
    assert client.post("/api/v1/tag/1/erase", headers=bearer(
        client, "admin", ADMIN_PASSWORD)).status_code in (404, 422)


def test_erase_button_needs_the_typed_title(crm_app: Flask) -> None:
    pk, _ = customer(crm_app, "按钮客户")
    client = login(crm_app.test_client())
    page = client.get(f"/customer/show/{pk}").get_data(as_text=True)
    assert f"/privacy/erase/customer/{pk}" in page
    form = client.get(f"/privacy/erase/customer/{pk}")
    assert form.status_code == 200 and "按钮客户" in form.get_data(as_text=True)
    client.post(f"/privacy/erase/customer/{pk}", data={"confirm": "wrong"})
    with crm_app.app_context():
        assert records("customer", None).get(pk).name == "按钮客户"
    done = client.post(f"/privacy/erase/customer/{pk}", data={"confirm": "按钮客户"})
    assert done.status_code == 302
    with crm_app.app_context():
        state().db.session.remove()
        assert records("customer", None).get(pk).name == f"已销毁 #{pk}"
    history = client.get(f"/audit/list/?_flt_3_entity=customer&_flt_3_record_id={pk}")
    assert history.status_code == 200
    shown = client.get(f"/customer/show/{pk}").get_data(as_text=True)
    assert "sd-erased" in shown and f"/privacy/erase/customer/{pk}" not in shown


def test_operator_sees_no_erase_button_and_cannot_open_the_page(crm_app: Flask) -> None:
    pk, _ = customer(crm_app, "无权客户")
    _, manager = make_user(crm_app, "manager")
    client = login(crm_app.test_client(), manager, PASSWORD)
    assert client.get(f"/privacy/erase/customer/{pk}").status_code in (302, 403)


def test_retention_page_and_report_csv_for_auditors(crm_app: Flask) -> None:
    import datetime as dt

    from app.privacy import retention

    with crm_app.app_context():
        service = records("customer", None)
        pk = service.create({"name": "过期客户", "kind": "person", "status": "lost"}).id
        table = state().models.table("customer")
        with state().db.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.id == pk)
                         .values(updated_at=dt.datetime(2020, 1, 1)))
        slot = f"views-{random.randrange(10**9)}"
        result = retention.run_rule(state().spec.entity("customer"), slot, dt.date(2026, 12, 1))
        assert result["changed"] >= 1
    _, auditor = make_user(crm_app, "auditor")
    client = login(crm_app.test_client(), auditor, PASSWORD)
    page = client.get("/privacy/retention/")
    assert page.status_code == 200 and slot in page.get_data(as_text=True)
    # The rule in words, from the schema (after: 3y, from: updated_at, when: {status: lost}),
    # in the reader's language, with labels and no YAML keys.
    text = page.get_data(as_text=True)
    assert "3 years after Updated at, when Status is Lost: anonymise" in text
    assert "action:" not in text
    client.get("/lang/zh")
    zh = client.get("/privacy/retention/").get_data(as_text=True)
    assert "更新时间之后 3 年，且状态为流失时：匿名化" in zh
    client.get("/lang/en")
    report = client.get(f"/privacy/retention/{result['run']}.csv")
    assert report.status_code == 200
    text = report.get_data(as_text=True)
    assert f"已销毁 #{pk}" in text and "过期客户" not in text
