"""The record service as attackers and hurried operators meet it, one finding per test."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.state import state
from tests.conftest import ADMIN_PASSWORD
from tests.security.conftest import PASSWORD, add_row, employee_for, make_user
from tests.security.test_rows import setup_two_operators


def token(client: Any, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db"})
    assert response.status_code == 200, response.data
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def masked(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def audit_rows(app: Flask, entity: str, record_id: int) -> list[Any]:
    with app.app_context():
        log = state().models.system["audit_log"]
        return list(state().db.session.execute(
            sa.select(log).where(log.c.entity == entity, log.c.record_id == str(record_id))
            .order_by(log.c.id)))


def test_api_put_answers_masked_and_is_audited(crm_app: Flask) -> None:
    d = setup_two_operators(crm_app)
    client = crm_app.test_client()
    headers = token(client, d["a"]["name"])
    url = f"/api/v1/customer/{d['a']['cust']}"
    for body in ({}, {"remark": "called back"}):
        response = client.put(url, json=body, headers=headers)
        assert response.status_code == 200, response.data
        text = response.data.decode()
        assert d["a"]["phone"] not in text and "110101199001011234" not in text
        assert response.json["result"]["phone"] == masked(d["a"]["phone"])
    phone = "139" + str(uuid.uuid4().int)[:8]
    post = client.post("/api/v1/customer/", headers=headers, json={
        "name": "New one", "phone": phone, "id_no": "110101199001019999"})
    assert post.status_code == 201, post.data
    assert phone not in post.data.decode()
    assert "110101199001019999" not in post.data.decode()
    updates = [r for r in audit_rows(crm_app, "customer", d["a"]["cust"])
               if r.action == "update"]
    assert updates and updates[-1].actor_name == d["a"]["name"]
    assert "called back" in updates[-1].changes


def test_search_box_sort_and_filters_do_not_reveal_masked_phones(crm_app: Flask,
                                                                client_for) -> None:
    d = setup_two_operators(crm_app)
    client = client_for(crm_app, d["a"]["name"])
    digits = d["a"]["phone"][3:7]  # the masked middle
    page = client.get(f"/customer/list/?q={digits}").data.decode()
    with crm_app.app_context():
        name = state().db.session.get(state().models.model("customer"), d["a"]["cust"]).name
    assert name not in page  # searching the hidden digits finds nothing
    charts = client.get(f"/customer/charts/data/by_kind?q={digits}").get_json()
    assert sum(charts["values"]) == 0
    flt = client.get(f"/customer/list/?_flt_0_phone={d['a']['phone'][:4]}").data.decode()
    assert name in flt  # the filter on a hidden field is ignored, not applied
    with crm_app.test_client() as admin_client:
        admin_client.post("/login/", data={"username": "admin", "password": ADMIN_PASSWORD})
        assert name in admin_client.get(f"/customer/list/?q={d['a']['phone']}").data.decode()


def test_sort_by_sensitive_column_is_ignored(crm_app: Flask, client_for) -> None:
    d = setup_two_operators(crm_app)
    with crm_app.app_context():
        employee = d["a"]["emp"]
    for i, phone in enumerate(("13900000009", "13900000001", "13900000005")):
        add_row(crm_app, "customer", name=f"S{i}-{uuid.uuid4().hex[:6]}", phone=phone,
                owner_id=employee, kind="company", points=0)
    client = client_for(crm_app, d["a"]["name"])
    plain = client.get("/customer/list/").data.decode()
    for direction in ("asc", "desc"):
        sorted_page = client.get(
            f"/customer/list/?_oc_CustomerView=phone&_od_CustomerView={direction}")
        assert sorted_page.status_code == 200
        order = re.findall(r"S\d-[0-9a-f]{6}", sorted_page.data.decode())
        assert order == re.findall(r"S\d-[0-9a-f]{6}", plain)


def test_filter_widget_offers_only_reachable_customers(crm_app: Flask, client_for) -> None:
    d = setup_two_operators(crm_app)
    client = client_for(crm_app, d["a"]["name"])
    assert client.get("/sales_order/list/").status_code == 200
    with crm_app.app_context():
        model = state().models.model("customer")
        names = {k: state().db.session.get(model, d[k]["cust"]).name for k in "ab"}
    # The grid's filter panel loads the customer picker from /grid/<entity>/pick/<field>
    # (the page no longer embeds every option): it must offer a's customer, never b's.
    offered = {k: [r["text"] for r in client.get(
        f"/grid/sales_order/pick/customer?q={names[k]}").get_json()["results"]] for k in "ab"}
    assert names["a"] in offered["a"]
    assert names["b"] not in offered["b"]
    by_id = client.get(f"/grid/sales_order/pick/customer?q={d['b']['cust']}").get_json()
    assert d["b"]["cust"] not in [r["id"] for r in by_id["results"]]


def test_stale_edit_form_is_refused_and_nothing_saved(crm_app: Flask, client_for) -> None:
    d = setup_two_operators(crm_app)
    cust = d["a"]["cust"]
    first = client_for(crm_app, d["a"]["name"])
    form = first.get(f"/customer/edit/{cust}").data.decode()
    version = re.search(r'name="record_version"[^>]*value="(\d+)"', form) or re.search(
        r'value="(\d+)"[^>]*name="record_version"', form)
    assert version, "the edit form carries the record's version"
    second = crm_app.test_client()
    headers = token(second, d["a"]["name"])
    assert second.put(f"/api/v1/customer/{cust}", json={"remark": "theirs"},
                      headers=headers).status_code == 200
    with crm_app.app_context():
        name = state().db.session.get(state().models.model("customer"), cust).name
    response = first.post(f"/customer/edit/{cust}", data={
        "name": name, "kind": "company", "points": "0", "remark": "mine",
        "record_version": version.group(1)})
    assert response.status_code == 200  # the form again, with the conflict message
    assert "changed this record" in response.data.decode()
    with crm_app.app_context():
        assert state().db.session.get(state().models.model("customer"), cust).remark == "theirs"


def test_etag_and_if_match(crm_app: Flask) -> None:
    cust = add_row(crm_app, "customer", name=f"E-{uuid.uuid4().hex[:6]}", kind="company",
                   points=0)
    client = crm_app.test_client()
    headers = token(client, "admin", ADMIN_PASSWORD)
    got = client.get(f"/api/v1/customer/{cust}", headers=headers)
    etag = got.headers["ETag"]
    ok = client.put(f"/api/v1/customer/{cust}", json={"remark": "1"},
                    headers={**headers, "If-Match": etag})
    assert ok.status_code == 200 and ok.headers["ETag"] != etag
    stale = client.put(f"/api/v1/customer/{cust}", json={"remark": "2"},
                       headers={**headers, "If-Match": etag})
    assert stale.status_code == 412
    gone = client.delete(f"/api/v1/customer/{cust}", headers={**headers, "If-Match": etag})
    assert gone.status_code == 412
    with crm_app.app_context():
        assert state().db.session.get(state().models.model("customer"), cust).remark == "1"


def test_concurrent_api_puts_never_insert_nor_fail(crm_app: Flask) -> None:
    cust = add_row(crm_app, "customer", name=f"K-{uuid.uuid4().hex[:6]}", kind="company",
                   points=0)
    contact = add_row(crm_app, "contact", name="Kim", customer_id=cust)
    headers = token(crm_app.test_client(), "admin", ADMIN_PASSWORD)
    with crm_app.app_context():
        table = state().models.table("contact")
        before = state().db.session.execute(sa.select(sa.func.count()).select_from(table)).scalar()
    statuses: list[int] = []

    def worker(n: int) -> None:
        client = crm_app.test_client()
        for i in range(5):
            response = client.put(f"/api/v1/contact/{contact}", headers=headers,
                                  json={"position": f"p{n}-{i}", "customer": cust})
            statuses.append(response.status_code)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with crm_app.app_context():
        after = state().db.session.execute(sa.select(sa.func.count()).select_from(table)).scalar()
    assert after == before
    assert statuses and all(s == 200 for s in statuses), sorted(set(statuses))


def test_operator_reaches_contacts_of_own_customers_only(crm_app: Flask, client_for) -> None:
    d = setup_two_operators(crm_app)
    mine = add_row(crm_app, "contact", name=f"Mine-{uuid.uuid4().hex[:6]}",
                   customer_id=d["a"]["cust"])
    theirs = add_row(crm_app, "contact", name=f"Theirs-{uuid.uuid4().hex[:6]}",
                     customer_id=d["b"]["cust"])
    client = client_for(crm_app, d["a"]["name"])
    assert client.get(f"/contact/show/{mine}").status_code == 200
    assert client.get(f"/contact/show/{theirs}").status_code == 404
    api = crm_app.test_client()
    headers = token(api, d["a"]["name"])
    assert api.get(f"/api/v1/contact/{theirs}", headers=headers).status_code == 404
    # a contact for someone else's customer is refused, not created out of sight
    refused = api.post("/api/v1/contact/", headers=headers,
                       json={"name": "Sneaky", "customer": d["b"]["cust"]})
    assert refused.status_code == 422
    with crm_app.app_context():
        model = state().models.model("contact")
        assert state().db.session.query(model).filter_by(name="Sneaky").count() == 0


def test_manager_sees_department_tree_only(crm_app: Flask, client_for) -> None:
    top = add_row(crm_app, "department", name=f"Top-{uuid.uuid4().hex[:6]}")
    child = add_row(crm_app, "department", name=f"Child-{uuid.uuid4().hex[:6]}",
                    parent_id=top)
    grandchild = add_row(crm_app, "department", name=f"GC-{uuid.uuid4().hex[:6]}",
                         parent_id=child)
    other = add_row(crm_app, "department", name=f"Other-{uuid.uuid4().hex[:6]}")
    customers = {}
    for key, dept in (("top", top), ("gc", grandchild), ("other", other)):
        emp = add_row(crm_app, "employee", name=f"E{key}", employee_no=uuid.uuid4().hex[:8],
                      department_id=dept)
        customers[key] = add_row(crm_app, "customer", name=f"C-{key}-{uuid.uuid4().hex[:6]}",
                                 owner_id=emp, kind="company", points=0)
    uid, manager = make_user(crm_app, "manager")
    me = employee_for(crm_app, uid)
    with crm_app.app_context():
        state().db.session.get(state().models.model("employee"), me).department_id = child
        state().db.session.commit()
    client = client_for(crm_app, manager)
    assert client.get(f"/customer/show/{customers['gc']}").status_code == 200
    assert client.get(f"/customer/show/{customers['top']}").status_code == 404
    assert client.get(f"/customer/show/{customers['other']}").status_code == 404


def test_form_create_gets_the_operator_as_owner(crm_app: Flask, client_for) -> None:
    uid, name = make_user(crm_app, "operator")
    emp = employee_for(crm_app, uid)
    client = client_for(crm_app, name)
    title = f"Own-{uuid.uuid4().hex[:6]}"
    response = client.post("/customer/add", data={"name": title, "kind": "company",
                                                  "points": "0"})
    assert response.status_code == 302
    with crm_app.app_context():
        model = state().models.model("customer")
        record = state().db.session.query(model).filter_by(name=title).one()
        assert record.owner_id == emp
        record_id = record.id
    assert client.get(f"/customer/show/{record_id}").status_code == 200


def test_filters_read_values_like_a_form(crm_app: Flask, client_for) -> None:
    token_ = uuid.uuid4().hex[:6]
    active = add_row(crm_app, "customer", name=f"Act-{token_}", status="active", kind="company",
                     points=0)
    add_row(crm_app, "customer", name=f"Pot-{token_}", status="potential", kind="company",
            points=0)
    with crm_app.test_client() as client:
        client.post("/login/", data={"username": "admin", "password": ADMIN_PASSWORD})
        for value in ("active", "活跃", "Active"):
            page = client.get(f"/customer/list/?q={token_}&_flt_0_status={value}")
            assert page.status_code == 200
            text = page.data.decode()
            assert f"Act-{token_}" in text and f"Pot-{token_}" not in text, value
        assert client.get("/customer/list/?_flt_0_created_at=2026/13/45").status_code == 200
    assert active
