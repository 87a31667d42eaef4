"""Chart aggregation in SQL equals hand-computed answers, on every backend.

Each backend gets its own fresh CRM database with a small fixed data set, so
the expected numbers below can be checked by eye.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.charts import aggregate
from app.schema.spec import ChartSpec, Label, Measure
from app.state import state
from tests.conftest import BACKENDS, CRM, login

T0 = dt.datetime(2024, 1, 1)
PASSWORD = "Chart-Pass-2024!"
# (name, kind, level, credit, owner, created_at). The level (客户分级) is not written: the
# classify rules compute it from what the customer paid, so each gets a paid order of
# ORDER_FOR[level] (none: level D).
ORDER_FOR = {"a": Decimal("150000.00"), "b": Decimal("50000.00"), "c": Decimal("1000.00")}
CUSTOMERS = [
    ("Acme One", "company", "a", Decimal("100.50"), "alice", dt.datetime(2024, 1, 15, 10, 0)),
    # stored UTC: the last second of January in the app zone (Asia/Shanghai, UTC+8)
    ("Acme Two", "company", "b", Decimal("200.00"), "alice", dt.datetime(2024, 1, 31, 15, 59, 59)),
    ("Beta", "person", "a", Decimal("50.25"), "bob", dt.datetime(2024, 3, 1, 0, 0)),
    ("Gamma", "person", None, None, None, dt.datetime(2024, 3, 31, 12, 0)),
    ("Acme Three", "company", "c", Decimal("10.00"), "bob", dt.datetime(2024, 7, 4, 8, 30)),
]
# Dates that straddle week, month, quarter and year boundaries (2024-01-01 is a Monday).
DAYS = [
    dt.date(2024, 1, 1),
    dt.date(2024, 1, 7),
    dt.date(2024, 1, 8),
    dt.date(2024, 2, 29),
    dt.date(2024, 4, 1),
    dt.date(2025, 12, 31),
]


def insert(table: sa.Table, **values: Any) -> int:
    """Insert one row with Core (explicit timestamps); return its id."""
    values.setdefault("created_at", T0)
    values.setdefault("updated_at", values["created_at"])
    result = state().db.session.execute(sa.insert(table).values(**values))
    return result.inserted_primary_key[0]


@pytest.fixture(scope="module", params=BACKENDS)
def chart_app(request: pytest.FixtureRequest, app_factory: Any) -> Iterator[Flask]:
    """A fresh CRM app per backend, holding the fixed data set."""
    app = app_factory(CRM, request.param)
    with app.app_context():
        sm = app.appbuilder.sm
        user = sm.add_user(
            "chart_op",
            "Chart",
            "Op",
            "chart_op@example.com",
            sm.find_role("operator"),
            password=PASSWORD,
        )
        models = state().models
        employee = models.table("employee")
        owners = {
            "alice": insert(employee, name="Alice", employee_no="E1", account_id=user.id),
            "bob": insert(employee, name="Bob", employee_no="E2"),
        }
        customer = models.table("customer")
        ids = []
        for name, kind, level, credit, owner, created in CUSTOMERS:
            ids.append(
                insert(
                    customer,
                    name=name,
                    kind=kind,
                    industry="retail" if level else None,
                    credit=credit,
                    owner_id=owners.get(owner),
                    created_at=created,
                    points=0,
                )
            )
        orders = models.table("sales_order")
        for n, ((_n, _k, level, _c, owner, _t), cid) in enumerate(zip(CUSTOMERS, ids,
                                                                       strict=True)):
            if level:  # a real write: the rollup and classify listeners set total_spent, level
                insert(orders, order_no=f"CH-{n}", customer_id=cid, quantity=1,
                       amount=ORDER_FOR[level], status="paid", approval="approved",
                       owner_id=owners.get(owner), ordered_at=T0)
        follow_up = models.table("follow_up")
        for i, day in enumerate(DAYS):
            insert(
                follow_up,
                customer_id=ids[0],
                content=f"call {i}",
                method="phone",
                followed_at=dt.datetime.combine(day, dt.time(23, 59, 59)),
                next_follow_up=day,
            )
        request_table = models.table("service_request")
        for title, satisfaction, created in [
            ("r1", 4, dt.datetime(2024, 1, 3)),
            ("r2", 5, dt.datetime(2024, 1, 20)),
            ("r3", 3, dt.datetime(2024, 3, 9)),
            ("r4", None, dt.datetime(2024, 3, 10)),
        ]:
            insert(
                request_table,
                title=title,
                customer_id=ids[0],
                satisfaction=satisfaction,
                created_at=created,
                status="new",
            )
        state().db.session.commit()
    yield app


def run(app: Flask, entity: str, spec: ChartSpec | str, path: str = "/") -> aggregate.ChartData:
    """Aggregate a chart (or the schema's chart of that name) as an English request to
    `path`, whose query arguments are the list filters."""
    from app.context import Actor, acting_as

    with app.test_request_context(path, headers={"Accept-Language": "en"}):
        # an anonymous request reaches nothing: ask as the admin
        admin = app.appbuilder.sm.find_user(username="admin")
        with acting_as(Actor(admin.id, "admin", "ui")):
            return _run(entity, spec)


def _run(entity: str, spec: ChartSpec | str) -> aggregate.ChartData:
    if isinstance(spec, str):
        spec = state().spec.entity(entity).chart(spec)
    return aggregate.aggregate(entity, spec, aggregate.list_filters(entity))


def test_enum_groups_follow_the_schema_order(chart_app: Flask) -> None:
    data = run(chart_app, "customer", "by_kind")
    assert data.labels == ["Person", "Company"]
    assert data.values == [2, 3]


def test_classified_levels_are_grouped_in_schema_order(chart_app: Flask) -> None:
    data = run(chart_app, "customer", "by_level")
    assert data.labels == ["A (key account)", "B (major)", "C (regular)", "D (minor)"]
    assert data.values == [2, 1, 1, 1]


def test_missing_enum_values_form_an_empty_group(chart_app: Flask) -> None:
    data = run(chart_app, "customer", "by_industry")
    assert data.labels == ["Retail", "(empty)"]
    assert data.values == [4, 1]


def test_sum_by_relation_is_labelled_with_titles_largest_first(chart_app: Flask) -> None:
    data = run(chart_app, "customer", "credit_by_owner")
    assert data.labels == ["Alice", "Bob", "(empty)"]
    assert data.values == [300.5, 60.25, 0]
    assert data.measure_label == "Sum of Credit limit"


def test_months_without_customers_are_zero(chart_app: Flask) -> None:
    data = run(chart_app, "customer", "new_per_month")
    assert data.time_series
    assert data.labels == [
        "2024-01",
        "2024-02",
        "2024-03",
        "2024-04",
        "2024-05",
        "2024-06",
        "2024-07",
    ]
    assert data.values == [2, 0, 2, 0, 0, 0, 1]


def test_average_per_month_leaves_empty_months_as_gaps(chart_app: Flask) -> None:
    data = run(chart_app, "service_request", "satisfaction_per_month")
    assert data.labels == ["2024-01", "2024-02", "2024-03"]
    assert data.values == [4.5, None, 3.0]


def test_kpis(chart_app: Flask) -> None:
    with chart_app.app_context():  # the CLI/system reaches every row
        assert aggregate.kpi_value("customer", Measure()) == 5
        assert aggregate.kpi_value("customer", Measure("sum", "credit")) == 360.75
        assert aggregate.kpi_value("customer", Measure("avg", "credit")) == 90.19
        assert aggregate.kpi_value("customer", Measure("max", "credit")) == 200
        assert aggregate.kpi_value("sales_order", Measure("sum", "amount")) == 351000
    data = run(chart_app, "customer", "customer_count")
    assert data.values == [5]


def test_charts_follow_the_list_search_box(chart_app: Flask) -> None:
    data = run(chart_app, "customer", "by_kind", "/customer/charts/?q=acme")
    assert data.labels == ["Company"]
    assert data.values == [3]


def test_charts_follow_the_list_filters(chart_app: Flask) -> None:
    with chart_app.app_context():
        bob = (
            state()
            .db.session.execute(sa.text("SELECT id FROM employee WHERE name = 'Bob'"))
            .scalar()
        )
    data = run(chart_app, "customer", "by_level", f"/customer/charts/?_flt_0_owner={bob}")
    assert dict(zip(data.labels, data.values, strict=True)) == {
        "A (key account)": 1,
        "C (regular)": 1,
    }
    data = run(chart_app, "customer", "by_kind", "/customer/charts/?_flt_0_kind=person")
    assert data.values == [2]


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("day", {d: 1 for d in DAYS}),
        (
            "week",
            {
                dt.date(2024, 1, 1): 2,
                dt.date(2024, 1, 8): 1,
                dt.date(2024, 2, 26): 1,
                dt.date(2024, 4, 1): 1,
                dt.date(2025, 12, 29): 1,
            },
        ),
        (
            "month",
            {
                dt.date(2024, 1, 1): 3,
                dt.date(2024, 2, 1): 1,
                dt.date(2024, 4, 1): 1,
                dt.date(2025, 12, 1): 1,
            },
        ),
        ("quarter", {dt.date(2024, 1, 1): 4, dt.date(2024, 4, 1): 1, dt.date(2025, 10, 1): 1}),
        ("year", {dt.date(2024, 1, 1): 5, dt.date(2025, 1, 1): 1}),
    ],
)
@pytest.mark.parametrize("column", ["next_follow_up", "followed_at"])
def test_date_truncation_per_period(
    chart_app: Flask, period: str, column: str, expected: dict
) -> None:
    """Dates (`date`) and late-evening timestamps (`datetime`) land in the right period."""
    with chart_app.test_request_context("/"):
        st = state()
        model = st.models.model("follow_up")
        key = aggregate.period_start(getattr(model, column), period, st.db.engine.dialect.name)
        stmt = sa.select(key.label("k"), sa.func.count()).select_from(model).group_by(key)
        found = {aggregate.as_date(k): n for k, n in st.db.session.execute(stmt)}
    assert found == expected


def test_quarter_series_fills_empty_quarters(chart_app: Flask) -> None:
    spec = ChartSpec(
        name="q", type="bar", label=Label("Q", "季度"), group_by="next_follow_up", period="quarter"
    )
    data = run(chart_app, "follow_up", spec)
    assert data.labels[0] == "2024 Q1"
    assert data.labels[-1] == "2025 Q4"
    assert len(data.labels) == 8
    assert data.values == [4, 1, 0, 0, 0, 0, 0, 1]


def test_reminders_list_due_today_and_overdue(chart_app: Flask) -> None:
    with chart_app.app_context():  # the CLI/system reaches every row
        f = state().spec.entity("follow_up").field("next_follow_up")
        assert aggregate.reminder_fields(state().spec.entity("follow_up")) == [f]
        reminder = aggregate.reminders("follow_up", f, today=dt.date(2024, 1, 7))
    assert (reminder.overdue_count, reminder.today_count) == (1, 1)
    assert [r["due"] for r in reminder.records] == [dt.date(2024, 1, 1), dt.date(2024, 1, 7)]
    assert [r["overdue"] for r in reminder.records] == [True, False]
    assert reminder.records[0]["context"] == "Acme One"
    assert reminder.records[0]["days"] == 6


def test_operator_charts_count_only_own_customers(chart_app: Flask) -> None:
    with chart_app.test_client() as client:
        login(client, "chart_op", PASSWORD)
        data = client.get("/customer/charts/data/by_kind").get_json()
        assert data["labels"] == ["Company"]
        assert data["values"] == [2]
        page = client.get("/dashboard/").data.decode()
        # KPIs: Alice's 2 customers, and the 4 service requests and 6 follow-ups
        # of her customers (the rules follow customer.owner); the amount of her customers'
        # two paid orders (150,000 + 50,000), not Bob's.
        kpis = re.findall(r'class="sd-kpi-value">([^<]*)<', page)
        assert kpis == ["2", "4", "6", "200,000"]


def test_chinese_labels(chart_app: Flask) -> None:
    with chart_app.test_client() as client:
        login(client)
        client.get("/lang/zh")
        data = client.get("/customer/charts/data/by_kind").get_json()
        assert data["labels"] == ["个人", "企业"]
        assert data["title"] == "按类型"


def test_a_stray_old_date_keeps_only_the_latest_periods() -> None:
    found = {dt.date(1900, 1, 1): 1.0, dt.date(2024, 1, 1): 2.0, dt.date(2024, 1, 3): 3.0}
    days, values, truncated = aggregate.fill_periods(found, "day", 0)
    assert truncated
    assert len(days) == aggregate.MAX_PERIODS
    assert days[-3:] == [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    assert values[-3:] == [2.0, 0, 3.0]
    days, values, truncated = aggregate.fill_periods(
        {dt.date(2023, 11, 1): 1.0, dt.date(2024, 2, 1): 4.0}, "month", 0
    )
    assert not truncated
    assert days == [
        dt.date(2023, 11, 1),
        dt.date(2023, 12, 1),
        dt.date(2024, 1, 1),
        dt.date(2024, 2, 1),
    ]
    assert values == [1.0, 0, 0, 4.0]
