"""The auditor's workspace and the web paths: UI changes, sign-ins, list, detail, export."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from flask import Flask

from app.state import state
from tests.audit.conftest import entries, last_id, unique, unique_phone
from tests.conftest import ADMIN_PASSWORD, login


def add_customer(client: Any, **values: Any) -> int:
    name = values.pop("name", unique("UI "))
    data = {"name": name, "kind": "company"}
    data.update(values)
    response = client.post("/customer/add", data=data)
    assert response.status_code == 302, response.data[:300]
    with client.application.app_context():
        model = state().models.model("customer")
        return state().db.session.query(model.id).filter(model.name == name).scalar()


def make_user(app: Flask, role: str) -> str:
    with app.app_context():
        sm = app.appbuilder.sm
        name = unique(f"{role}-")
        sm.add_user(name, role, "T", f"{name}@example.com", sm.find_role(role),
                    password=ADMIN_PASSWORD)
        state().db.session.remove()
    return name


def test_ui_create_update_delete_are_recorded_with_request_details(
    crm_app: Flask, admin_client: Any
) -> None:
    with crm_app.app_context():
        mark = last_id()
    cid = add_customer(admin_client, level="a")
    assert admin_client.post(f"/customer/edit/{cid}", data={
        "name": "Renamed", "kind": "person", "points": "3", "level": "a"}).status_code == 302
    assert admin_client.post(f"/customer/delete/{cid}").status_code == 302
    with crm_app.app_context():
        rows = entries(mark, entity="customer", record_id=str(cid))
    assert [r["action"] for r in rows] == ["create", "update", "delete"]
    assert {r["source"] for r in rows} == {"ui"}
    assert {r["actor_name"] for r in rows} == {"admin"}
    assert all(r["actor_id"] and r["client_ip"] and r["request_id"] for r in rows)
    assert rows[1]["changes"]["kind"] == {"before": "company", "after": "person"}
    assert rows[1]["changes"]["name"]["after"] == "Renamed"


def test_sign_in_failed_sign_in_and_sign_out_are_recorded(crm_app: Flask) -> None:
    with crm_app.app_context():
        mark = last_id()
    with crm_app.test_client() as client:
        client.post("/login/", data={"username": "admin", "password": "Guess-Pa55word"})
        client.post("/login/", data={"username": "nobody-here", "password": "x"})
        login(client)
        client.get("/logout/")
    with crm_app.app_context():
        rows = [r for r in entries(mark) if r["action"].startswith("log")]
    assert [r["action"] for r in rows] == ["login_failed", "login_failed", "login", "logout"]
    # The login log (登录日志) also keeps why it failed and the browser's user agent.
    assert rows[0]["detail"] == {"username": "admin", "reason": "wrong_password",
                                 "agent": rows[0]["detail"]["agent"]}
    assert rows[1]["detail"]["username"] == "nobody-here"
    assert rows[1]["detail"]["reason"] == "unknown_user"
    assert rows[2]["actor_name"] == rows[3]["actor_name"] == "admin"
    assert rows[0]["client_ip"] == "127.0.0.1"
    assert "Guess-Pa55word" not in repr(rows)


def test_list_filters_by_record_and_detail_shows_labelled_diff(
    crm_app: Flask, admin_client: Any
) -> None:
    cid = add_customer(admin_client, industry="retail", phone=unique_phone())
    admin_client.post(f"/customer/edit/{cid}", data={
        "name": "Diff Co", "kind": "company", "industry": "finance"})
    page = admin_client.get(
        f"/audit/list/?_flt_3_entity=customer&_flt_3_record_id={cid}").data.decode()
    ids = sorted(set(int(i) for i in re.findall(r"/audit/show/(\d+)", page)))
    with crm_app.app_context():
        expected = [r["id"] for r in entries(entity="customer", record_id=str(cid))]
    assert ids == expected
    show = admin_client.get(f"/audit/show/{expected[-1]}").data.decode()
    assert "Industry" in show and "Retail" in show and "Finance" in show
    assert "Updated" in show and "Customer" in show
    admin_client.get("/lang/zh")
    show = admin_client.get(f"/audit/show/{expected[-1]}").data.decode()
    assert "行业" in show and "零售" in show and "金融" in show
    admin_client.get("/lang/en")
    # filters by actor, action, source and time range are there
    page = admin_client.get(
        "/audit/list/?_flt_3_actor_name=admin&_flt_3_action=update&_flt_3_source=ui"
        "&_flt_1_created_at=2000-01-01+00:00:00").data.decode()
    assert f"/audit/show/{expected[-1]}" in page


def test_record_page_links_to_its_history(crm_app: Flask, admin_client: Any) -> None:
    cid = add_customer(admin_client)
    page = admin_client.get(f"/customer/show/{cid}").data.decode()
    assert f"/audit/list/?_flt_3_entity=customer&amp;_flt_3_record_id={cid}" in page


@pytest.mark.parametrize("path", ["/audit/add", "/audit/edit/1", "/audit/delete/1",
                                  "/audit/action_post", "/audit/api/delete/1"])
def test_nobody_can_edit_or_delete_entries_not_even_admin(
    crm_app: Flask, admin_client: Any, path: str
) -> None:
    with crm_app.app_context():
        before = entries()[0]
    for method in (admin_client.get, admin_client.post):
        assert method(path).status_code in (404, 405)
    with crm_app.app_context():
        assert entries()[0] == before


def test_export_csv_and_xlsx_follow_the_filters_and_are_audited(
    crm_app: Flask, admin_client: Any
) -> None:
    cid = add_customer(admin_client)
    response = admin_client.get(
        f"/audit/export/csv?_flt_3_entity=customer&_flt_3_record_id={cid}")
    assert response.status_code == 200
    table = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert table[0][:3] == ["No.", "Time (UTC)", "User ID"]
    assert len(table) == 2 and table[1][7] == "Created" and table[1][9] == str(cid)
    # A person reads it: the entity by its label, the diff as before/after columns.
    assert table[1][8] == "Customer" and table[0][11:13] == ["Before", "After"]
    assert table[1][11] == "" and "Name: " in table[1][12]
    xlsx = admin_client.get(f"/audit/export/xlsx?_flt_3_record_id={cid}&_flt_3_entity=customer")
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(xlsx.data), read_only=True).active
    assert len(list(sheet.iter_rows(values_only=True))) == 2
    with crm_app.app_context():
        exported = [r for r in entries(action="export") if r["entity"] == "audit_log"]
    assert exported[-1]["detail"]["rows"] == 1
    assert exported[-1]["detail"]["format"] == "xlsx"


def test_verify_button_runs_verification_as_a_job(crm_app: Flask, admin_client: Any) -> None:
    import time

    from app.jobs import get_run

    response = admin_client.post("/audit/verify")
    assert response.status_code == 302
    page = admin_client.get("/audit/list/").data.decode()
    run_id = int(re.search(r"Verification started as job (\d+)", page).group(1))
    with crm_app.app_context():
        deadline = time.monotonic() + 60
        while (run := get_run(run_id))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, run
            time.sleep(0.2)
            state().db.session.remove()
        assert run["status"] == "done", run
        assert run["counts"]["entries"] > 0
        assert [r for r in entries() if r["action"] == "audit_verify"][-1]["source"] == "job"


def test_auditor_reads_and_exports_operator_cannot(crm_app: Flask) -> None:
    auditor, operator = make_user(crm_app, "auditor"), make_user(crm_app, "operator")
    with crm_app.test_client() as client:
        login(client, auditor)
        assert client.get("/audit/list/").status_code == 200
        assert client.get("/audit/export/csv").status_code == 200
        assert client.get("/audit/add").status_code == 404
    with crm_app.test_client() as client:
        login(client, operator)
        assert client.get("/audit/list/").status_code != 200
        assert client.get("/audit/export/csv").status_code != 200
        assert client.post("/audit/verify").status_code != 200
