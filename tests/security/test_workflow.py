"""Workflows (业务流程): a service request's status moves only by its steps (状态流转)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.state import state
from tests.conftest import CRM
from tests.security.conftest import add_row, employee_for, make_user
from tests.security.test_record_service import audit_rows, token
from tests.security.test_rows import setup_two_operators


def setup_request(app: Flask, status: str = "new", **values: Any) -> dict[str, Any]:
    """Two operators with a customer each; a service agent assigned a request of a's."""
    d = setup_two_operators(app)
    uid, name = make_user(app, "service_agent")
    d["agent"] = {"uid": uid, "name": name, "emp": employee_for(app, uid)}
    d["req"] = add_row(app, "service_request", title=f"Broken {uuid.uuid4().hex[:6]}",
                       customer_id=d["a"]["cust"], assignee_id=d["agent"]["emp"],
                       **{"status": status, "type": "repair", "priority": "medium", **values})
    return d


def status_of(app: Flask, pk: int) -> str:
    with app.app_context():
        table = state().models.table("service_request")
        value = state().db.session.execute(
            sa.select(table.c.status).where(table.c.id == pk)).scalar()
        state().db.session.remove()
        return value


def step(client: Any, pk: int, name: str, headers: dict[str, str], **body: Any) -> Any:
    return client.post(f"/api/v1/service_request/{pk}/transition/{name}", json=body,
                       headers=headers)


def test_put_cannot_jump_from_new_to_closed(crm_app: Flask) -> None:
    d = setup_request(crm_app)
    client = crm_app.test_client()
    response = client.put(f"/api/v1/service_request/{d['req']}", json={"status": "closed"},
                          headers=token(client, d["a"]["name"]))
    assert response.status_code == 422, response.data
    assert "开始处理" in json.dumps(response.json, ensure_ascii=False)  # names the step
    assert status_of(crm_app, d["req"]) == "new"


def test_edit_form_has_no_status_and_cannot_change_it(crm_app: Flask, client_for) -> None:
    d = setup_request(crm_app)
    client = client_for(crm_app, d["a"]["name"])
    form = client.get(f"/service_request/edit/{d['req']}").data.decode()
    assert 'name="status"' not in form
    assert 'name="status"' not in client.get("/service_request/add").data.decode()
    version = re.search(r'name="record_version"[^>]*value="(\d+)"', form) or re.search(
        r'value="(\d+)"[^>]*name="record_version"', form)
    client.post(f"/service_request/edit/{d['req']}", data={
        "title": "Edited", "customer": str(d["a"]["cust"]), "type": "repair",
        "priority": "medium", "status": "closed",
        "record_version": version.group(1) if version else ""})
    assert status_of(crm_app, d["req"]) == "new"


def test_import_starts_new_requests_at_initial(crm_app: Flask, tmp_path: Path) -> None:
    from app.io.importer import import_file

    d = setup_two_operators(crm_app)
    with crm_app.app_context():
        customer = state().db.session.get(state().models.model("customer"), d["a"]["cust"])
        title = f"Imported {uuid.uuid4().hex[:6]}"
        path = tmp_path / "requests.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([["title", "customer", "status"],
                                      [title, customer.name, "closed"]])
        assert import_file("service_request", path).created == 1
        table = state().models.table("service_request")
        assert state().db.session.execute(
            sa.select(table.c.status).where(table.c.title == title)).scalar() == "new"
        state().db.session.remove()


def test_new_record_starts_at_initial_whatever_the_body_says(crm_app: Flask) -> None:
    d = setup_two_operators(crm_app)
    client = crm_app.test_client()
    response = client.post("/api/v1/service_request/", headers=token(client, d["a"]["name"]),
                           json={"title": "Jump", "customer": d["a"]["cust"],
                                 "status": "closed"})
    assert response.status_code == 201, response.data
    assert response.json["result"]["status"] == "new"


def test_agent_starts_by_api_and_it_is_audited(crm_app: Flask) -> None:
    d = setup_request(crm_app)
    client = crm_app.test_client()
    response = step(client, d["req"], "start", token(client, d["agent"]["name"]))
    assert response.status_code == 200, response.data
    assert response.json["result"]["status"] == "in_progress"
    assert response.headers["ETag"] == f'"{response.json["result"]["version"]}"'
    entries = audit_rows(crm_app, "service_request", d["req"])
    moves = [e for e in entries if e.action == "transition"]
    assert moves and moves[-1].actor_name == d["agent"]["name"]
    detail = json.loads(moves[-1].detail)
    assert detail["transition"] == "start"
    assert (detail["from"], detail["to"]) == ("new", "in_progress")
    assert any(e.action == "update" and "in_progress" in (e.changes or "") for e in entries)


def test_agent_starts_from_the_show_page(crm_app: Flask, client_for) -> None:
    d = setup_request(crm_app)
    client = client_for(crm_app, d["agent"]["name"])
    page = client.get(f"/service_request/show/{d['req']}").data.decode()
    assert f"/service_request/transition/{d['req']}/start" in page
    assert "/transition/" + str(d["req"]) + "/close" not in page  # not from "new"
    response = client.post(f"/service_request/transition/{d['req']}/start", data={})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/service_request/show/{d['req']}")
    assert status_of(crm_app, d["req"]) == "in_progress"
    assert "is now In progress" in client.get(response.headers["Location"]).data.decode()


def test_role_not_in_roles_is_403(crm_app: Flask) -> None:
    d = setup_request(crm_app)
    client = crm_app.test_client()
    response = step(client, d["req"], "start", token(client, d["a"]["name"]))
    assert response.status_code == 403, response.data
    assert status_of(crm_app, d["req"]) == "new"


def test_close_without_satisfaction_is_422(crm_app: Flask) -> None:
    d = setup_request(crm_app, status="resolved")
    client = crm_app.test_client()
    headers = token(client, d["agent"]["name"])
    response = step(client, d["req"], "close", headers)
    assert response.status_code == 422, response.data
    assert list(response.json["message"]) == ["satisfaction"]
    assert status_of(crm_app, d["req"]) == "resolved"
    assert client.put(f"/api/v1/service_request/{d['req']}", json={"satisfaction": 5},
                      headers=headers).status_code == 200
    assert step(client, d["req"], "close", headers).status_code == 200
    assert status_of(crm_app, d["req"]) == "closed"


def test_reopen_needs_a_comment(crm_app: Flask) -> None:
    d = setup_request(crm_app, status="closed", satisfaction=2)
    client = crm_app.test_client()
    headers = token(client, d["a"]["name"])  # no `roles`: anyone who may update
    response = step(client, d["req"], "reopen", headers)
    assert response.status_code == 422, response.data
    assert list(response.json["message"]) == ["comment"]
    response = step(client, d["req"], "reopen", headers, comment="Still broken")
    assert response.status_code == 200, response.data
    detail = json.loads([e for e in audit_rows(crm_app, "service_request", d["req"])
                         if e.action == "transition"][-1].detail)
    assert detail["comment"] == "Still broken"


def test_stale_if_match_is_412(crm_app: Flask) -> None:
    d = setup_request(crm_app)
    client = crm_app.test_client()
    headers = token(client, d["agent"]["name"])
    version = client.get(f"/api/v1/service_request/{d['req']}",
                         headers=headers).headers["ETag"]
    assert client.put(f"/api/v1/service_request/{d['req']}", json={"priority": "high"},
                      headers=headers).status_code == 200
    response = step(client, d["req"], "start", {**headers, "If-Match": version})
    assert response.status_code == 412, response.data
    assert status_of(crm_app, d["req"]) == "new"


def test_operator_cannot_step_another_operators_request(crm_app: Flask, client_for) -> None:
    d = setup_request(crm_app, status="closed")
    client = crm_app.test_client()
    response = step(client, d["req"], "reopen", token(client, d["b"]["name"]), comment="x")
    assert response.status_code == 404
    ui = client_for(crm_app, d["b"]["name"])
    assert ui.post(f"/service_request/transition/{d['req']}/reopen",
                   data={"comment": "x"}).status_code == 404
    assert status_of(crm_app, d["req"]) == "closed"


@pytest.fixture(scope="module")
def guarded_app(app_factory, tmp_path_factory) -> Flask:  # noqa: ANN001
    """The CRM with a `when` on `resolve` and an import key on service requests (SQLite)."""
    text = CRM.read_text(encoding="utf-8")
    text = text.replace(
        "requires: [resolved_at], label:",
        "requires: [resolved_at], when: {priority: {ne: low}}, label:", 1)
    title = ("      title:        {type: string, max_length: 200, required: true, "
             "label: {en: Title, zh: 标题}}\n")
    text = text.replace(title, title + "      ticket_no: {type: string, unique: true, "
                        "label: {en: Ticket, zh: 工单号}}\n", 1)
    text = text.replace("    search: [title, description]\n",
                        "    search: [title, description]\n    import_key: ticket_no\n", 1)
    assert "when: {priority" in text and "import_key: ticket_no" in text
    path = tmp_path_factory.mktemp("guarded") / "crm.yaml"
    path.write_text(text, encoding="utf-8")
    return app_factory(path, "sqlite")


def test_when_condition_is_checked_on_the_record(guarded_app: Flask) -> None:
    d = setup_request(guarded_app, status="in_progress", priority="low",
                      resolved_at=dt.datetime(2026, 11, 1, 9, 0))
    client = guarded_app.test_client()
    headers = token(client, d["agent"]["name"])
    response = step(client, d["req"], "resolve", headers)
    assert response.status_code == 422, response.data
    assert status_of(guarded_app, d["req"]) == "in_progress"
    assert client.put(f"/api/v1/service_request/{d['req']}", json={"priority": "high"},
                      headers=headers).status_code == 200
    assert step(client, d["req"], "resolve", headers).status_code == 200
    assert status_of(guarded_app, d["req"]) == "resolved"


def test_import_refuses_a_state_change_unless_admin_or_cli(guarded_app: Flask,
                                                           tmp_path: Path) -> None:
    from app.context import Actor, acting_as
    from app.io.importer import import_file

    ticket = uuid.uuid4().hex[:8]
    d = setup_request(guarded_app, ticket_no=ticket)
    with guarded_app.app_context():
        customer = state().db.session.get(state().models.model("customer"), d["a"]["cust"])
        path = tmp_path / "requests.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([["ticket_no", "title", "customer", "status"],
                                      [ticket, "Changed", customer.name, "closed"]])
        with acting_as(Actor(d["a"]["uid"], d["a"]["name"], "web")):
            result = import_file("service_request", path)
        assert (result.updated, result.rejected) == (0, 1)
        state().db.session.remove()
        assert status_of(guarded_app, d["req"]) == "new"
        assert import_file("service_request", path).updated == 1  # the CLI migrates data
        assert status_of(guarded_app, d["req"]) == "closed"


def test_refused_step_in_the_ui_says_why(crm_app: Flask, client_for) -> None:
    d = setup_request(crm_app, status="closed", satisfaction=4)
    client = client_for(crm_app, d["a"]["name"])
    page = client.get(f"/service_request/show/{d['req']}").data.decode()
    form = re.search(rf'<form[^>]*/service_request/transition/{d["req"]}/reopen".*?</form>',
                     page, re.S)
    assert form and " required" in form.group(0)  # the comment box is marked required
    response = client.post(f"/service_request/transition/{d['req']}/reopen", data={})
    assert response.status_code == 302
    assert "needs a comment" in client.get(response.headers["Location"]).data.decode()
    assert status_of(crm_app, d["req"]) == "closed"


def test_reader_without_update_gets_no_buttons_and_403(crm_app: Flask, client_for) -> None:
    d = setup_request(crm_app)
    _, auditor = make_user(crm_app, "auditor")
    page = client_for(crm_app, auditor).get(f"/service_request/show/{d['req']}")
    assert page.status_code == 200
    assert "/transition/" not in page.data.decode()
    client = crm_app.test_client()
    assert step(client, d["req"], "start", token(client, auditor)).status_code == 403
    assert status_of(crm_app, d["req"]) == "new"
