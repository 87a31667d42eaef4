"""Bounded list counts (app/records/counting.py) and the chart cache (app/charts/cache.py).

Lists: an unfiltered PostgreSQL list shows the planner's estimate ("About …"),
a filtered one counts up to 10,000 ("10,000+"), "Exact count" gives the exact
number, and paging works without a last page. Charts: a scoped number is never
served to a user of another scope, and a write shows at once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.records.counting import CAP
from app.state import state
from tests.conftest import CRM, login

PASSWORD = "Bounded-Count-2024!"
ROWS = CAP + 50


def add_customers(app: Flask, count: int, owner_id: int | None = None) -> None:
    """Insert `count` customers in one Core statement (no ORM, no audit: it is seeding)."""
    with app.app_context():
        st = state()
        table = st.models.table("customer")
        now = dt.datetime(2026, 1, 1)
        token = uuid.uuid4().hex[:6]
        with st.db.engine.begin() as conn:
            conn.execute(table.insert(), [
                {"name": f"客户{token}{i}", "kind": "company", "owner_id": owner_id,
                 "created_at": now, "updated_at": now, "version": 1}
                for i in range(count)])


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def big_app(request: pytest.FixtureRequest, app_factory: Any) -> Flask:
    app = app_factory(CRM, request.param)
    add_customers(app, ROWS)
    with app.app_context():
        if request.param == "postgresql":
            with state().db.engine.connect() as conn:
                conn.execute(sa.text("ANALYZE customer"))
                conn.commit()
    return app


def test_list_counts_are_bounded_and_paging_works(big_app: Flask) -> None:
    with big_app.app_context():
        dialect = state().db.engine.dialect.name
    client = login(big_app.test_client())
    page = client.get("/customer/list/").data.decode()
    if dialect == "postgresql":
        assert "About " in page and "Exact count" in page, page[-3000:]
    else:  # no trustworthy estimate: capped
        assert f"{CAP:,}+ records" in page and "Exact count" in page
    assert 'rel="next"' in page
    filtered = client.get("/customer/list/?q=客户").data.decode()
    assert f"{CAP:,}+ records" in filtered
    exact = client.get("/customer/list/?q=客户&sd_count=exact").data.decode()
    assert f"{ROWS:,} records" in exact and "Exact count" not in exact
    second = client.get("/customer/list/?q=客户&page_CustomerView=1").data.decode()
    assert 'rel="prev"' in second and f"{CAP:,}+ records" in second
    few = client.get("/customer/list/?q=nothing-like-this").data.decode()
    assert "0 records" in few and "Exact count" not in few


def operator(app: Flask, name: str, customers: int) -> Any:
    """An operator (row rule: own customers) with an employee record and `customers`."""
    with app.app_context():
        st = state()
        sm = app.appbuilder.sm
        user = sm.add_user(name, name, "Op", f"{name}@example.com", sm.find_role("operator"),
                           password=PASSWORD)
        employees = st.models.table("employee")
        with st.db.engine.begin() as conn:  # plain Core: seeding, not an edit
            emp_id = conn.execute(employees.insert().values(
                name=name, employee_no=uuid.uuid4().hex[:10], account_id=user.id,
                created_at=dt.datetime(2026, 1, 1), updated_at=dt.datetime(2026, 1, 1),
                version=1).returning(employees.c.id)).scalar()
    add_customers(app, customers, emp_id)
    client = app.test_client()
    login(client, name, PASSWORD)
    return client


def kpi(client: Any) -> float:
    response = client.get("/customer/charts/data/customer_count")
    assert response.status_code == 200, response.data[:500]
    return response.get_json()["values"][0]


def test_chart_cache_never_crosses_scopes_and_writes_show(app_factory: Any) -> None:
    app = app_factory(CRM, "postgresql", REDIS_URL="")
    tag = uuid.uuid4().hex[:5]
    one, two = operator(app, f"op1{tag}", 3), operator(app, f"op2{tag}", 5)
    assert kpi(one) == 3 and kpi(two) == 5
    assert kpi(one) == 3 and kpi(two) == 5  # served from the cache, still per scope
    admin = login(app.test_client())
    assert kpi(admin) == 8
    response = one.post("/customer/add", data={"name": f"新客户{tag}", "kind": "company"})
    assert response.status_code == 302
    assert kpi(one) == 4 and kpi(two) == 5 and kpi(admin) == 9


def test_chart_cache_in_redis(app_factory: Any, redis_url: str) -> None:
    app = app_factory(CRM, "mariadb", REDIS_URL=redis_url)
    tag = uuid.uuid4().hex[:5]
    one, two = operator(app, f"rp1{tag}", 2), operator(app, f"rp2{tag}", 6)
    assert (kpi(one), kpi(two)) == (2, 6)
    assert (kpi(one), kpi(two)) == (2, 6)
    with app.app_context():
        from app.charts import cache

        before = cache.generation("customer")
    assert one.post("/customer/add", data={"name": f"新{tag}", "kind": "company"}
                    ).status_code == 302
    with app.app_context():
        assert cache.generation("customer") > before
    assert (kpi(one), kpi(two)) == (3, 6)
