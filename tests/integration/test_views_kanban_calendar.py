"""Kanban (看板) and calendar (日历) pages: rows and masking per role, moves through the service.

Walks the `views:` of both shipped schemas and of a small schema written here;
the CRM's service-request board moves cards by workflow steps only.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.records.display import local_today
from app.schema import check_file
from app.state import state
from tests.conftest import CRM, LIBRARY, login
from tests.security.conftest import PASSWORD, add_row, employee_for, make_user
from tests.security.test_rows import setup_two_operators

DESK = """\
version: 1
app:
  title: {en: Desk, zh: 工作台}
  default_locale: zh
  timezone: Asia/Shanghai
entities:
  agent:
    label: {en: Agent, zh: 坐席}
    menu: {en: Desk, zh: 工作台}
    title: name
    fields:
      name: {type: string, required: true, label: {en: Name, zh: 姓名}}
      account: {type: user, label: {en: Account, zh: 账号}}
  ticket:
    label: {en: Ticket, zh: 工单}
    menu: {en: Desk, zh: 工作台}
    title: subject
    fields:
      subject: {type: string, required: true, label: {en: Subject, zh: 主题}}
      stage:
        type: enum
        default: todo
        label: {en: Stage, zh: 阶段}
        choices:
          todo: {en: To do, zh: 待办}
          doing: {en: Doing, zh: 进行中}
          done: {en: Done, zh: 完成}
      phone: {type: phone, sensitive: true, label: {en: Phone, zh: 电话}}
      due_at: {type: datetime, label: {en: Due at, zh: 截止时间}}
      until: {type: datetime, label: {en: Until, zh: 结束时间}}
      amount: {type: decimal, precision: 12, scale: 2, currency: CNY, label: {en: Amount, zh: 金额}}
      agent: {type: relation, to: agent, default: $me, label: {en: Agent, zh: 坐席}}
    list: [subject, stage, agent]
    search: [subject]
    filters: [stage, due_at]
    views:
      kanban: {group_by: stage, card: [phone, amount, agent]}
      calendar: {date: due_at, title: subject, end: until}
    charts:
      - {name: due_per_month, type: line, group_by: due_at, period: month,
         label: {en: Due, zh: 到期}}
roles:
  clerk:
    label: {en: Clerk, zh: 职员}
    grants: {ticket: [read, create, update], agent: [read]}
    rows: {ticket: {agent: $user}}
  viewer:
    label: {en: Viewer, zh: 查看者}
    grants: {ticket: [read], agent: [read]}
"""
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module", params=BACKENDS)
def desk_app(
    request: pytest.FixtureRequest, app_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> Flask:
    path = tmp_path_factory.mktemp("desk") / "desk.yaml"
    path.write_text(DESK, encoding="utf-8")
    return app_factory(path, request.param)


@pytest.fixture(scope="module", params=BACKENDS)
def crm(request: pytest.FixtureRequest, app_factory: Any) -> Flask:
    return app_factory(CRM, request.param)


def zh_client(app: Flask, username: str = "admin", password: str | None = None) -> Any:
    client = app.test_client()
    if password is None:
        login(client)
    else:
        login(client, username, password)
    client.get("/lang/zh")
    return client


def column_keys(page: str) -> list[str]:
    return re.findall(r'<section class="sd-column" data-key="([^"]+)"', page)


def card_ids(page: str, key: str) -> list[int]:
    """The ids of the cards in column `key`."""
    sections = page.split('<section class="sd-column" data-key="')
    for section in sections[1:]:
        if section.startswith(f'{key}"'):
            return [int(i) for i in re.findall(r'class="sd-card[^"]*" data-id="(\d+)"', section)]
    return []


def move(client: Any, entity: str, pk: int, to: str, version: Any = None, **extra: Any) -> Any:
    body = {"id": pk, "to": to, **extra}
    if version is not None:
        body["version"] = version
    return client.post(f"/{entity}/kanban/move", json=body)


# -- every declared view of both shipped schemas ----------------------------------------


@pytest.mark.parametrize("schema", [CRM, LIBRARY], ids=["crm", "library"])
def test_every_declared_view_renders_its_columns_in_choice_order(
    schema: Path, app_factory: Any
) -> None:
    spec, _ = check_file(schema)
    app = app_factory(schema, "sqlite")
    client = zh_client(app)
    declared = [e for e in spec.entities if e.views.kanban or e.views.calendar]
    assert declared
    for entity in spec.entities:
        kanban = client.get(f"/{entity.name}/kanban/")
        calendar = client.get(f"/{entity.name}/calendar/")
        if entity.views.kanban is None:
            assert kanban.status_code == 404
        else:
            page = kanban.data.decode()
            assert kanban.status_code == 200, page[:300]
            f = entity.field(entity.views.kanban.group_by)
            assert column_keys(page) == [c.key for c in f.choices]
            for choice in f.choices:
                assert choice.label.zh in page
            listing = client.get(f"/{entity.name}/list/").data.decode()
            assert f'href="/{entity.name}/kanban/"' in listing
        if entity.views.calendar is None:
            assert calendar.status_code == 404
        else:
            page = calendar.data.decode()
            assert calendar.status_code == 200, page[:300]
            assert f"{local_today().year}年{local_today().month}月" in page
            assert "sd-cal-grid" in page and "sd-cal-agenda" in page
    # the boards are in the entity's menu
    home = client.get("/dashboard/").data.decode()
    for entity in declared:
        for kind in ("kanban", "calendar"):
            if getattr(entity.views, kind) is not None:
                assert f'href="/{entity.name}/{kind}/"' in home


# -- rows and masking per role (own schema) ------------------------------------------


def desk_setup(app: Flask) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for key in ("a", "b"):
        uid, name = make_user(app, "clerk")
        agent = add_row(app, "agent", name=f"Agent-{key}-{uuid.uuid4().hex[:4]}", account_id=uid)
        d[key] = {"uid": uid, "name": name, "agent": agent}
    d["viewer"] = make_user(app, "viewer")[1]
    token = uuid.uuid4().hex[:6]
    d["ta"] = add_row(
        app,
        "ticket",
        subject=f"TA-{token}",
        stage="todo",
        phone="13812345678",
        agent_id=d["a"]["agent"],
        amount=1234.5,
        due_at=dt.datetime(2026, 11, 23, 20, 15),
    )  # UTC: 24 Nov 04:15 in Shanghai
    d["tb"] = add_row(
        app,
        "ticket",
        subject=f"TB-{token}",
        stage="doing",
        phone="13900001111",
        agent_id=d["b"]["agent"],
        due_at=dt.datetime(2026, 11, 10, 1, 0),
    )
    d["token"] = token
    return d


def version_of(app: Flask, entity: str, pk: int) -> int:
    with app.app_context():
        table = state().models.table(entity)
        value = (
            state().db.session.execute(sa.select(table.c.version).where(table.c.id == pk)).scalar()
        )
        state().db.session.remove()
        return value


def value_of(app: Flask, entity: str, pk: int, column: str) -> Any:
    with app.app_context():
        table = state().models.table(entity)
        value = (
            state().db.session.execute(sa.select(table.c[column]).where(table.c.id == pk)).scalar()
        )
        state().db.session.remove()
        return value


def test_clerk_board_shows_own_cards_masked_and_formatted(desk_app: Flask) -> None:
    d = desk_setup(desk_app)
    page = zh_client(desk_app, d["a"]["name"], PASSWORD).get("/ticket/kanban/").data.decode()
    assert f"TA-{d['token']}" in page and f"TB-{d['token']}" not in page
    assert d["ta"] in card_ids(page, "todo")
    assert "13812345678" not in page and "138" in page  # masked: a clerk lacks view_sensitive
    assert "¥1,234.50" in page
    assert "Agent-a" in page
    admin = zh_client(desk_app).get("/ticket/kanban/").data.decode()
    assert "13812345678" in admin and f"TB-{d['token']}" in admin


def test_calendar_places_times_in_the_app_zone_and_by_row_rule(desk_app: Flask) -> None:
    d = desk_setup(desk_app)
    client = zh_client(desk_app, d["a"]["name"], PASSWORD)
    page = client.get("/ticket/calendar/?month=2026-11").data.decode()
    day = page.split('data-date="2026-11-24"')[1].split("</td>")[0]
    assert f"TA-{d['token']}" in day and "04:15" in day
    assert f"TB-{d['token']}" not in page
    assert "2026年11月" in page and "?month=2026-12" in page and "?month=2026-10" in page
    other = zh_client(desk_app, d["b"]["name"], PASSWORD).get("/ticket/calendar/?month=2026-11")
    assert f"TB-{d['token']}" in other.data.decode()


def test_reader_without_update_sees_no_drag_and_cannot_move(desk_app: Flask) -> None:
    d = desk_setup(desk_app)
    client = zh_client(desk_app, d["viewer"], PASSWORD)
    page = client.get("/ticket/kanban/").data.decode()
    assert page.count("sd-movable") == 0
    response = move(client, "ticket", d["ta"], "done")
    assert response.status_code in (401, 403)
    assert value_of(desk_app, "ticket", d["ta"], "stage") == "todo"


def test_move_updates_through_the_service_and_checks_the_version(desk_app: Flask) -> None:
    d = desk_setup(desk_app)
    client = zh_client(desk_app, d["a"]["name"], PASSWORD)
    version = version_of(desk_app, "ticket", d["ta"])
    response = move(client, "ticket", d["ta"], "doing", version)
    assert response.status_code == 200, response.json
    assert response.json["card"]["version"] == version + 1
    assert value_of(desk_app, "ticket", d["ta"], "stage") == "doing"
    stale = move(client, "ticket", d["ta"], "done", version)  # the version read before
    assert stale.status_code == 409
    assert "其他人修改了它" in stale.json["message"]
    assert value_of(desk_app, "ticket", d["ta"], "stage") == "doing"
    # another clerk's card is out of reach
    assert move(client, "ticket", d["tb"], "done").status_code == 404
    assert move(client, "ticket", d["ta"], "nowhere").status_code == 422
    from tests.security.test_record_service import audit_rows

    assert any(r.action == "update" for r in audit_rows(desk_app, "ticket", d["ta"]))


# -- the CRM: a service-request board moves by workflow steps ----------------------------


def crm_request(app: Flask, status: str = "new") -> dict[str, Any]:
    d = setup_two_operators(app)
    uid, name = make_user(app, "manager")
    d["manager"] = {"uid": uid, "name": name, "emp": employee_for(app, uid)}
    d["req"] = add_row(
        app,
        "service_request",
        title=f"Broken {uuid.uuid4().hex[:6]}",
        customer_id=d["a"]["cust"],
        status=status,
        type="repair",
        priority="medium",
    )
    return d


def test_operator_sees_only_requests_of_own_customers(crm: Flask) -> None:
    d = crm_request(crm)
    mine = zh_client(crm, d["a"]["name"], PASSWORD).get("/service_request/kanban/").data.decode()
    theirs = zh_client(crm, d["b"]["name"], PASSWORD).get("/service_request/kanban/").data.decode()
    assert d["req"] in card_ids(mine, "new")
    assert d["req"] not in card_ids(theirs, "new")
    assert column_keys(mine) == ["new", "in_progress", "resolved", "closed"]
    assert "新建" in mine and "处理中" in mine


def test_drag_that_the_workflow_refuses_goes_back_with_the_reason(crm: Flask) -> None:
    d = crm_request(crm)
    operator = zh_client(crm, d["a"]["name"], PASSWORD)
    page = operator.get("/service_request/kanban/").data.decode()
    # the operator may not take 开始处理 (service agents and managers may): no target
    assert re.search(rf'data-id="{d["req"]}" data-version="\d+"\s+data-targets=""', page)
    no_step = move(operator, "service_request", d["req"], "closed")
    assert no_step.status_code == 422 and not no_step.json["ok"]
    assert "新建" in no_step.json["message"] and "已关闭" in no_step.json["message"]
    not_allowed = move(operator, "service_request", d["req"], "in_progress")
    assert not_allowed.status_code == 403
    assert "开始处理" in not_allowed.json["message"]
    assert value_of(crm, "service_request", d["req"], "status") == "new"
    manager = zh_client(crm, d["manager"]["name"], PASSWORD)
    started = move(
        manager,
        "service_request",
        d["req"],
        "in_progress",
        version_of(crm, "service_request", d["req"]),
    )
    # the manager reaches the request only in their department's scope: admin as fallback
    if started.status_code == 404:
        started = move(zh_client(crm), "service_request", d["req"], "in_progress")
    assert started.status_code == 200, started.json
    assert value_of(crm, "service_request", d["req"], "status") == "in_progress"
    # 标记已解决 requires 解决时间: refused with that reason, the card stays
    admin = zh_client(crm)
    resolve = move(admin, "service_request", d["req"], "resolved")
    assert resolve.status_code == 422 and "解决时间" in resolve.json["message"]
    assert value_of(crm, "service_request", d["req"], "status") == "in_progress"


def test_a_step_that_needs_a_comment_asks_for_it(crm: Flask) -> None:
    d = crm_request(crm, status="closed")
    admin = zh_client(crm)
    asked = move(admin, "service_request", d["req"], "in_progress")
    assert asked.status_code == 422 and asked.json["needs_comment"] is True
    done = move(admin, "service_request", d["req"], "in_progress", comment="客户再次来电")
    assert done.status_code == 200, done.json
    assert value_of(crm, "service_request", d["req"], "status") == "in_progress"


def test_follow_up_calendar_shows_own_follow_ups_on_their_date(crm: Flask) -> None:
    d = setup_two_operators(crm)
    day = local_today() + dt.timedelta(days=3)
    token = uuid.uuid4().hex[:6]
    for key in ("a", "b"):
        add_row(
            crm,
            "follow_up",
            customer_id=d[key]["cust"],
            content=f"call {key} {token}",
            followed_at=dt.datetime(2026, 11, 1, 2, 0),
            next_follow_up=day,
            owner_id=None,
            method="phone",
        )
    page = (
        zh_client(crm, d["a"]["name"], PASSWORD)
        .get(f"/follow_up/calendar/?month={day:%Y-%m}")
        .data.decode()
    )
    cell = page.split(f'data-date="{day.isoformat()}"')[1].split("</td>")[0]
    with crm.app_context():
        names = {
            k: state().db.session.get(state().models.model("customer"), d[k]["cust"]).name
            for k in "ab"
        }
        state().db.session.remove()
    assert names["a"] in cell  # titled by the customer
    assert names["b"] not in page


def test_charts_group_times_by_the_local_month(desk_app: Flask) -> None:
    # 31 Jan 2020 20:00 UTC is 1 Feb 04:00 in Shanghai: February's bar
    add_row(
        desk_app,
        "ticket",
        subject=f"Edge-{uuid.uuid4().hex[:4]}",
        stage="todo",
        due_at=dt.datetime(2020, 1, 31, 20, 0),
    )
    with desk_app.test_client() as client:
        login(client)
        data = client.get("/ticket/charts/data/due_per_month").json
    counts = dict(zip(data["labels"], data["values"], strict=False))
    assert counts.get("2020-02", 0) >= 1 and counts.get("2020-01", 0) == 0, counts


def test_calendar_spans_a_record_from_its_date_to_its_end(desk_app: Flask) -> None:
    d = desk_setup(desk_app)
    token = uuid.uuid4().hex[:6]
    add_row(
        desk_app,
        "ticket",
        subject=f"Span-{token}",
        stage="todo",
        agent_id=d["a"]["agent"],
        due_at=dt.datetime(2026, 12, 30, 2, 0),
        until=dt.datetime(2027, 1, 2, 2, 0),
    )
    client = zh_client(desk_app, d["a"]["name"], PASSWORD)
    page = client.get("/ticket/calendar/?month=2026-12").data.decode()
    days = [
        day
        for day in (
            "2026-12-29",
            "2026-12-30",
            "2026-12-31",
            "2027-01-01",
            "2027-01-02",
            "2027-01-03",
        )
        if f"Span-{token}" in page.split(f'data-date="{day}"')[1].split("</td>")[0]
    ]
    assert days == ["2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02"]
    january = client.get("/ticket/calendar/?month=2027-01").data.decode()
    agenda = january.split('class="sd-cal-agenda"')[1]
    assert f"Span-{token}" in agenda and 'data-date="2027-01-02"' in agenda
    assert 'data-date="2026-12-31"' not in agenda  # the phone list keeps to its month


def test_api_answer_names_who_made_the_record(desk_app: Flask) -> None:
    from tests.security.test_record_service import token

    d = desk_setup(desk_app)
    client = desk_app.test_client()
    headers = token(client, d["a"]["name"])
    response = client.post(
        "/api/v1/ticket/", json={"subject": "Via API", "stage": "todo"}, headers=headers
    )
    assert response.status_code == 201, response.data
    made = response.json["result"]["created_by"]
    assert made["name"].startswith("Agent-a") and made["id"] == d["a"]["uid"]


def test_board_and_calendar_follow_the_search_box(desk_app: Flask) -> None:
    d = desk_setup(desk_app)
    client = zh_client(desk_app)
    board = client.get(f"/ticket/kanban/?q=TA-{d['token']}").data.decode()
    assert f"TA-{d['token']}" in board and f"TB-{d['token']}" not in board
    month = client.get(f"/ticket/calendar/?month=2026-11&q=TB-{d['token']}").data.decode()
    assert f"TB-{d['token']}" in month and f"TA-{d['token']}" not in month
    assert f"month=2026-12&amp;q=TB-{d['token']}" in month
