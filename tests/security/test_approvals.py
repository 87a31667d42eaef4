"""Approvals (审批): a sales order over 50,000 waits for the rep's manager, then a manager.

Through the API, the inbox (UI) and the record service, on SQLite, PostgreSQL
and MariaDB: two levels, the submitter never approves, only the current
level's approvers decide, a rejection needs a comment, an approver must be
able to read the record, every decision is in the history and the audit log,
and the requester hears about it. Generated: every workflow step of every
shipped schema is allowed and refused for the roles as declared.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.state import state
from tests.conftest import CRM, LIBRARY
from tests.security.conftest import add_row, make_user
from tests.security.test_record_service import audit_rows, token


def employee(app: Flask, user_id: int | None, department: int | None = None,
             manager: int | None = None) -> int:
    tag = uuid.uuid4().hex[:8]
    return add_row(app, "employee", name=f"E{tag}", employee_no=tag, account_id=user_id,
                   department_id=department, manager_id=manager)


def setup_order(app: Flask, amount: str = "80000") -> dict[str, Any]:
    """A department with two managers (m1 is the rep's manager) and an operator's order."""
    d: dict[str, Any] = {}
    dept = add_row(app, "department", name=f"Sales {uuid.uuid4().hex[:6]}")
    for key in ("m1", "m2"):
        uid, name = make_user(app, "manager")
        d[key] = {"uid": uid, "name": name, "emp": employee(app, uid, dept)}
    uid, name = make_user(app, "operator")
    d["op"] = {"uid": uid, "name": name, "emp": employee(app, uid, dept, d["m1"]["emp"])}
    # A manager of another department: may not read the order, so never approves it.
    other = add_row(app, "department", name=f"Other {uuid.uuid4().hex[:6]}")
    uid, name = make_user(app, "manager")
    d["far"] = {"uid": uid, "name": name, "emp": employee(app, uid, other)}
    d["cust"] = add_row(app, "customer", name=f"Cust {uuid.uuid4().hex[:6]}", kind="company",
                        owner_id=d["op"]["emp"], points=0)
    d["order"] = add_row(app, "sales_order", order_no=f"SO-{uuid.uuid4().hex[:8]}",
                         customer_id=d["cust"], amount=Decimal(amount), quantity=1,
                         status="draft", approval="draft", owner_id=d["op"]["emp"])
    return d


def approval_of(app: Flask, pk: int) -> str:
    with app.app_context():
        table = state().models.table("sales_order")
        value = state().db.session.execute(
            sa.select(table.c.approval).where(table.c.id == pk)).scalar()
        state().db.session.remove()
        return value


def submit(client: Any, pk: int, headers: dict[str, str], **body: Any) -> Any:
    return client.post(f"/api/v1/sales_order/{pk}/transition/submit", json=body,
                       headers=headers)


def request_id(client: Any, headers: dict[str, str], pk: int) -> int:
    inbox = client.get("/api/v1/approvals/", headers=headers).json
    return next(r["id"] for r in inbox["waiting"] if r["record_id"] == pk
                and r["entity"] == "sales_order")


def decide(client: Any, rid: int, decision: str, headers: dict[str, str], **body: Any) -> Any:
    return client.post(f"/api/v1/approvals/{rid}/{decision}", json=body, headers=headers)


def notifications(app: Flask, user_id: int, record_id: int) -> list[Any]:
    with app.app_context():
        table = state().models.system["notification"]
        rows = list(state().db.session.execute(sa.select(table).where(
            table.c.user_id == user_id, table.c.entity == "sales_order",
            table.c.record_id == record_id).order_by(table.c.id)))
        state().db.session.remove()
        return rows


def test_two_levels_then_the_order_is_approved(crm_app: Flask) -> None:
    d = setup_order(crm_app)
    client = crm_app.test_client()
    op, m1, m2 = (token(client, d[k]["name"]) for k in ("op", "m1", "m2"))
    response = submit(client, d["order"], op, comment="Big customer")
    assert response.status_code == 200, response.data
    assert response.json["result"]["approval"] == "pending"  # 审批中 while the request is open
    assert approval_of(crm_app, d["order"]) == "pending"
    assert [n.message for n in notifications(crm_app, d["m1"]["uid"], d["order"])]

    # Level 1 is the rep's manager only: m2 waits for level 2.
    assert client.get("/api/v1/approvals/", headers=m2).json["count"] == 0
    rid = request_id(client, m1, d["order"])
    assert decide(client, rid, "approve", m2).status_code == 403
    response = decide(client, rid, "approve", m1, comment="OK from me")
    assert response.status_code == 200, response.data
    assert response.json["result"]["level"] == 2
    assert approval_of(crm_app, d["order"]) == "pending"

    # Level 2 (role manager): m1 already decided level 1, so it is m2's.
    assert decide(client, rid, "approve", m1).status_code == 403
    assert request_id(client, m2, d["order"]) == rid
    response = decide(client, rid, "approve", m2, comment="Approved")
    assert response.status_code == 200, response.data
    assert response.json["result"]["status"] == "approved"
    assert approval_of(crm_app, d["order"]) == "approved"
    assert decide(client, rid, "approve", m2).status_code == 409  # already decided

    entries = audit_rows(crm_app, "sales_order", d["order"])
    events = [json.loads(e.detail) for e in entries if e.action == "approval"]
    assert [(e["event"], e["level"]) for e in events] == [
        ("submitted", 1), ("approve", 1), ("approve", 2)]
    assert [e.actor_name for e in entries if e.action == "approval"] == [
        d["op"]["name"], d["m1"]["name"], d["m2"]["name"]]
    moves = [json.loads(e.detail) for e in entries if e.action == "transition"]
    assert [(m["from"], m["to"]) for m in moves] == [("draft", "pending"),
                                                     ("pending", "approved")]
    told = [n.message for n in notifications(crm_app, d["op"]["uid"], d["order"])]
    assert any(m.startswith("Approved by") for m in told)


def test_small_order_is_approved_at_once(crm_app: Flask) -> None:
    d = setup_order(crm_app, amount="1200")
    client = crm_app.test_client()
    response = submit(client, d["order"], token(client, d["op"]["name"]))
    assert response.status_code == 200, response.data
    assert approval_of(crm_app, d["order"]) == "approved"
    assert client.get("/api/v1/approvals/",
                      headers=token(client, d["m1"]["name"])).json["count"] == 0


def test_submitter_never_approves_even_holding_the_role(crm_app: Flask) -> None:
    d = setup_order(crm_app)
    client = crm_app.test_client()
    m1, m2 = token(client, d["m1"]["name"]), token(client, d["m2"]["name"])
    # m2 (a manager) submits the operator's order: level 1 is m1, level 2 never m2.
    assert submit(client, d["order"], m2).status_code == 200
    rid = request_id(client, m1, d["order"])
    assert decide(client, rid, "approve", m2).status_code == 403
    assert decide(client, rid, "approve", m1).status_code == 200
    response = decide(client, rid, "approve", m2)
    assert response.status_code == 403, response.data
    assert response.json["message"] in ("You cannot approve or reject your own request.",
                                        "您不能审批自己提交的申请。")
    assert client.get("/api/v1/approvals/", headers=m2).json["count"] == 0
    assert decide(client, rid, "approve", m1).status_code == 200  # m1, the only other one
    assert approval_of(crm_app, d["order"]) == "approved"


def test_reject_needs_a_comment_and_puts_the_order_back(crm_app: Flask) -> None:
    d = setup_order(crm_app)
    client = crm_app.test_client()
    op, m1 = token(client, d["op"]["name"]), token(client, d["m1"]["name"])
    assert submit(client, d["order"], op).status_code == 200
    rid = request_id(client, m1, d["order"])
    response = decide(client, rid, "reject", m1)
    assert response.status_code == 422, response.data
    assert approval_of(crm_app, d["order"]) == "pending"
    response = decide(client, rid, "reject", m1, comment="Price too low")
    assert response.status_code == 200, response.data
    assert response.json["result"]["status"] == "rejected"
    assert approval_of(crm_app, d["order"]) == "draft"
    told = notifications(crm_app, d["op"]["uid"], d["order"])
    assert any("Price too low" in (n.params or "") for n in told)
    # Back at draft, the operator may change it and submit again.
    assert submit(client, d["order"], op).status_code == 200
    assert approval_of(crm_app, d["order"]) == "pending"


def test_approver_must_read_the_record(crm_app: Flask) -> None:
    d = setup_order(crm_app)
    client = crm_app.test_client()
    far = token(client, d["far"]["name"])
    assert submit(client, d["order"], token(client, d["op"]["name"])).status_code == 200
    rid = request_id(client, token(client, d["m1"]["name"]), d["order"])
    assert client.get("/api/v1/approvals/", headers=far).json["count"] == 0
    assert decide(client, rid, "approve", far).status_code == 403
    # The rep's manager in a department that does not reach the order: no one for level 1.
    with crm_app.app_context():
        table = state().models.table("employee")
        state().db.session.execute(sa.update(table).where(
            table.c.id == d["op"]["emp"]).values(manager_id=d["far"]["emp"]))
        state().db.session.commit()
    other = add_row(crm_app, "sales_order", order_no=f"SO-{uuid.uuid4().hex[:8]}",
                    customer_id=d["cust"], amount=Decimal("90000"), quantity=1,
                    status="draft", approval="draft", owner_id=d["op"]["emp"])
    response = submit(client, other, token(client, d["op"]["name"]))
    assert response.status_code == 422, response.data
    assert approval_of(crm_app, other) == "draft"


def test_campaign_goes_live_when_another_manager_approves(crm_app: Flask) -> None:
    d = setup_order(crm_app)
    campaign = add_row(crm_app, "campaign", name=f"双十一 {uuid.uuid4().hex[:6]}",
                       channel="wechat", status="planned", leads=0, conversions=0)
    client = crm_app.test_client()
    m1, m2 = token(client, d["m1"]["name"]), token(client, d["m2"]["name"])
    response = client.post(f"/api/v1/campaign/{campaign}/transition/publish", json={},
                           headers=m1)
    assert response.status_code == 200, response.data
    assert response.json["result"]["status"] == "reviewing"
    rid = next(r["id"] for r in client.get("/api/v1/approvals/", headers=m2).json["waiting"]
               if r["entity"] == "campaign" and r["record_id"] == campaign)
    assert decide(client, rid, "approve", m1).status_code == 403  # m1 submitted it
    assert decide(client, rid, "approve", m2).status_code == 200
    assert client.get(f"/api/v1/campaign/{campaign}",
                      headers=m1).json["result"]["status"] == "running"


def test_pending_order_takes_no_edit(crm_app: Flask) -> None:
    d = setup_order(crm_app)
    client = crm_app.test_client()
    op = token(client, d["op"]["name"])
    assert submit(client, d["order"], op).status_code == 200
    response = client.put(f"/api/v1/sales_order/{d['order']}", json={"amount": "10"},
                          headers=op)
    assert response.status_code == 409, response.data
    assert submit(client, d["order"], op).status_code == 409


def test_deleting_the_record_cancels_its_request(crm_app: Flask) -> None:
    d = setup_order(crm_app)
    client = crm_app.test_client()
    m1 = token(client, d["m1"]["name"])
    assert submit(client, d["order"], token(client, d["op"]["name"])).status_code == 200
    rid = request_id(client, m1, d["order"])
    assert client.delete(f"/api/v1/sales_order/{d['order']}", headers=m1).status_code == 200
    assert client.get("/api/v1/approvals/", headers=m1).json["count"] == 0
    assert decide(client, rid, "approve", m1).status_code == 409
    mine = client.get("/api/v1/approvals/", headers=token(client, d["op"]["name"])).json
    assert [r["status"] for r in mine["submitted"] if r["id"] == rid] == ["cancelled"]


def test_inbox_page_badge_and_decision_forms(crm_app: Flask, client_for) -> None:
    d = setup_order(crm_app)
    api = crm_app.test_client()
    assert submit(api, d["order"], token(api, d["op"]["name"])).status_code == 200
    m1 = client_for(crm_app, d["m1"]["name"])
    m2 = client_for(crm_app, d["m2"]["name"])
    page = m1.get("/approvals/").data.decode()
    assert "sd-approvals-badge" in page and 'data-request-id="' in page
    rid = request_id(api, token(api, d["m1"]["name"]), d["order"])
    # The wrong approver's POST changes nothing.
    response = m2.post(f"/approvals/{rid}/approve", data={"comment": "me?"})
    assert response.status_code == 302
    assert "not an approver" in m2.get("/approvals/").data.decode()
    assert m1.post(f"/approvals/{rid}/reject", data={}).status_code == 302
    assert approval_of(crm_app, d["order"]) == "pending"
    assert m1.post(f"/approvals/{rid}/approve", data={"comment": "Fine"}).status_code == 302
    show = m2.get(f"/sales_order/show/{d['order']}").data.decode()
    assert "sd-approval-mine" in show  # level 2 is m2's: decide from the record
    assert m2.post(f"/approvals/{rid}/approve", data={"comment": "Done",
                                                      "next": f"/sales_order/show/{d['order']}"}
                   ).headers["Location"].endswith(f"/sales_order/show/{d['order']}")
    assert approval_of(crm_app, d["order"]) == "approved"
    show = client_for(crm_app, d["op"]["name"]).get(f"/sales_order/show/{d['order']}").data
    history = show.decode()
    assert "sd-approval-history" in history
    assert history.count("sd-approval-decision") == 2
    assert "Fine" in history and "Done" in history


def test_api_needs_a_token(crm_app: Flask) -> None:
    client = crm_app.test_client()
    assert client.get("/api/v1/approvals/").status_code == 401
    assert client.post("/api/v1/approvals/1/approve", json={}).status_code == 401


def test_import_refuses_a_state_change_unless_admin(crm_app: Flask, tmp_path: Path) -> None:
    from app.context import Actor, acting_as
    from app.io.importer import import_file

    d = setup_order(crm_app)
    with crm_app.app_context():
        order_no = state().db.session.get(state().models.model("sales_order"),
                                          d["order"]).order_no
        path = tmp_path / "orders.csv"
        path.write_text(f"order_no,approval\n{order_no},approved\n", encoding="utf-8")
        with acting_as(Actor(d["op"]["uid"], d["op"]["name"], "web")):
            result = import_file("sales_order", path)
        assert (result.updated, result.rejected) == (0, 1)
        state().db.session.remove()
        assert approval_of(crm_app, d["order"]) == "draft"
        assert import_file("sales_order", path).updated == 1  # the CLI migrates data
        state().db.session.remove()
    assert approval_of(crm_app, d["order"]) == "approved"


def test_bulk_step_moves_some_submits_others_refuses_the_rest(crm_app: Flask,
                                                               client_for) -> None:
    d = setup_order(crm_app)  # 80,000: needs approval
    small = add_row(crm_app, "sales_order", order_no=f"SO-{uuid.uuid4().hex[:8]}",
                    customer_id=d["cust"], amount=Decimal("500"), quantity=1, status="draft",
                    approval="draft", owner_id=d["op"]["emp"])
    done = add_row(crm_app, "sales_order", order_no=f"SO-{uuid.uuid4().hex[:8]}",
                   customer_id=d["cust"], amount=Decimal("500"), quantity=1, status="draft",
                   approval="approved", owner_id=d["op"]["emp"])
    operator = client_for(crm_app, d["op"]["name"])
    page = operator.get("/sales_order/list/").data.decode()
    assert "sd-bulk-transition" in page and 'name="step"' in page
    response = operator.post("/grid/sales_order/bulk/transition", data={
        "rowid": [str(d["order"]), str(small), str(done)], "step": "submit",
        "next": "/sales_order/list/"})
    assert response.status_code == 302, response.data
    flashed = operator.get("/sales_order/list/").data.decode()
    assert "Step taken on 1 records." in flashed and "1 sent for approval." in flashed
    assert f"#{done} " in flashed  # refused, with its reason
    assert [approval_of(crm_app, pk) for pk in (d["order"], small, done)] == [
        "pending", "approved", "approved"]
    # A step the role may not take is not offered, and refused when posted anyway.
    response = operator.post("/grid/sales_order/bulk/transition", data={
        "rowid": [str(done)], "step": "revise", "comment": "x"})
    assert response.status_code == 302
    assert "Choose a workflow step" in operator.get("/sales_order/list/").data.decode()
    assert approval_of(crm_app, done) == "approved"


def test_bulk_step_cannot_reach_foreign_rows(crm_app: Flask, client_for) -> None:
    d = setup_order(crm_app, amount="10")
    uid, name = make_user(crm_app, "operator")
    employee(crm_app, uid)
    stranger = client_for(crm_app, name)
    response = stranger.post("/grid/sales_order/bulk/transition", data={
        "rowid": [str(d["order"])], "step": "submit"})
    assert response.status_code == 404
    assert approval_of(crm_app, d["order"]) == "draft"


# -- generated: every step of every shipped schema, roles as declared -------------------


def _workflow_cases() -> list[tuple[str, str, str, str]]:
    from app.schema import check_file

    cases = []
    for path in (CRM, LIBRARY):
        spec, _ = check_file(path)
        for entity in spec.entities:
            if entity.workflow is None:
                continue
            for t in entity.workflow.transitions:
                for role in spec.roles:
                    cases.append((path.name, entity.name, t.name, role.name))
    return cases


CASES = _workflow_cases()


@pytest.mark.parametrize("schema, entity, step, role", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}" for c in CASES])
def test_step_allowed_for_the_declared_roles(sqlite_crm_app: Flask, app_factory, schema: str,
                                              entity: str, step: str, role: str) -> None:
    from app.records import workflow
    from app.records.service import Forbidden, NotFound, RecordService

    app = sqlite_crm_app if schema == CRM.name else _library_app(app_factory)
    uid, _name = make_user(app, role)
    with app.test_request_context():
        user = app.appbuilder.sm.get_user_by_id(uid)
        service = RecordService(entity, user)
        wf = service.entity.workflow
        t = wf.transition(step)
        declared = service.can("update") and (not t.roles or role in t.roles)
        assert workflow.allowed(service, t) is declared
        if declared:
            return
        # Refused in practice too: a record in the step's source state (admin's) is not moved.
        pk = _record_in(app, entity, t.sources[0])
        obj = service.session.get(service.model, pk)
        with pytest.raises((Forbidden, NotFound)):
            service.transition(obj, step, comment="generated")
        service.session.rollback()
        assert getattr(service.session.get(service.model, pk), wf.field) == t.sources[0]


_LIBRARY: dict[str, Flask] = {}


def _library_app(app_factory) -> Flask:  # noqa: ANN001
    if "app" not in _LIBRARY:
        _LIBRARY["app"] = app_factory(LIBRARY, "sqlite")
    return _LIBRARY["app"]


def _record_in(app: Flask, entity: str, state_name: str) -> int:
    """A record of `entity` at `state_name`, its required fields and relations filled."""
    from app.demo import DemoValues

    spec = state().spec
    e = spec.entity(entity)
    values = DemoValues(spec.default_locale, seed=7)
    row: dict[str, Any] = {}
    for f in e.fields:
        if f.is_many or f.type == "user":
            continue
        if f.is_relation:
            if f.required:
                row[f.column_name] = _record_in(app, f.to, "") if spec.entity(
                    f.to).workflow is None else _record_in(app, f.to, spec.entity(
                        f.to).workflow.initial)
            continue
        row[f.name] = values.value(e, f, uuid.uuid4().int % 10**6)
    if e.workflow is not None and state_name:
        row[e.workflow.field] = state_name
    obj = state().models.model(entity)(**row)
    state().db.session.add(obj)
    state().db.session.commit()
    return obj.id


# -- a schema of its own: expense claims, approved by finance then the claimant's boss ---------

EXPENSES = """\
version: 1
app:
  title: {en: Expenses, zh: 报销}
  default_locale: zh
entities:
  staff:
    label: {en: Staff, zh: 员工}
    title: name
    fields:
      name: {type: string, required: true, label: {en: Name, zh: 姓名}}
      login: {type: user, label: {en: Login, zh: 账号}}
      boss: {type: relation, to: staff, on_delete: set_null, label: {en: Boss, zh: 上级}}
  claim:
    label: {en: Expense claim, zh: 报销单}
    title: subject
    fields:
      subject: {type: string, required: true, label: {en: Subject, zh: 事由}}
      total: {type: decimal, precision: 10, scale: 2, label: {en: Total, zh: 金额}}
      claimant: {type: relation, to: staff, on_delete: set_null, default: $me,
                 label: {en: Claimant, zh: 报销人}}
      state: {type: enum, default: open, label: {en: State, zh: 状态},
              choices: {open: {en: Open, zh: 待提交}, checking: {en: Checking, zh: 审核中},
                        paid: {en: Paid, zh: 已付款}}}
    workflow:
      field: state
      initial: open
      transitions:
        - name: claim
          from: open
          to: paid
          label: {en: Claim, zh: 报销}
          approval: {pending: checking, levels: [{role: finance}, {by: claimant.boss}]}
roles:
  clerk:
    label: {en: Clerk, zh: 职员}
    grants: {claim: [read, create, update], staff: [read]}
    rows: {claim: {claimant: $user}}
  finance:
    label: {en: Finance, zh: 财务}
    grants: {claim: [read, update], staff: [read]}
  boss:
    label: {en: Boss, zh: 主管}
    grants: {claim: [read], staff: [read]}
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def expenses_app(request: pytest.FixtureRequest, app_factory, tmp_path_factory) -> Flask:  # noqa: ANN001
    path = tmp_path_factory.mktemp("expenses") / "expenses.yaml"
    path.write_text(EXPENSES, encoding="utf-8")
    return app_factory(path, request.param)


def test_each_level_of_each_approval_decides_in_turn(expenses_app: Flask) -> None:
    """Walks the schema: every approval's levels, each decided by its own approver only."""
    app = expenses_app
    users = {role: make_user(app, role) for role in ("clerk", "finance", "boss")}
    boss_staff = add_row(app, "staff", name="Boss", login_id=users["boss"][0])
    add_row(app, "staff", name="Clerk", login_id=users["clerk"][0], boss_id=boss_staff)
    client = app.test_client()
    headers = {role: token(client, name) for role, (_uid, name) in users.items()}
    with app.app_context():
        entity = state().spec.entity("claim")
    for t in entity.workflow.transitions:
        if t.approval is None:
            continue
        created = client.post("/api/v1/claim/", json={"subject": f"Trip {t.name}",
                                                      "total": "300"}, headers=headers["clerk"])
        assert created.status_code == 201, created.data
        pk = created.json["id"]
        response = client.post(f"/api/v1/claim/{pk}/transition/{t.name}", json={},
                               headers=headers["clerk"])
        assert response.status_code == 200, response.data
        assert response.json["result"]["state"] == (t.approval.pending or t.sources[0])
        for number, level in enumerate(t.approval.levels, 1):
            approver = level.role or "boss"  # `by: claimant.boss` leads to the boss's login
            waiting = client.get("/api/v1/approvals/", headers=headers[approver]).json
            rid = next(r["id"] for r in waiting["waiting"] if r["record_id"] == pk)
            assert waiting["waiting"][0]["level"] == number
            for other in set(headers) - {approver}:
                assert decide(client, rid, "approve", headers[other]).status_code == 403
            assert decide(client, rid, "approve", headers[approver]).status_code == 200
        final = client.get(f"/api/v1/claim/{pk}", headers=headers["clerk"]).json["result"]
        assert final["state"] == t.to  # the read-only boss's approval took the step
