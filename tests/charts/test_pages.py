"""Chart pages, the dashboard and the home page, as a signed-in user sees them."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.state import state

STATIC = Path(__file__).resolve().parents[2] / "app" / "static"
# src= or href= pointing at another host: http://, https:// or protocol-relative //.
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']\s*(?:https?:)?//""", re.IGNORECASE)
CSS_EXTERNAL = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])\s*(?:https?:)?//""", re.I)


def add(app: Flask, entity: str, **values: Any) -> int:
    with app.app_context():
        table = state().models.table(entity)
        now = dt.datetime(2024, 5, 1)
        values = {"created_at": now, "updated_at": now, **values}
        result = state().db.session.execute(sa.insert(table).values(**values))
        state().db.session.commit()
        return result.inserted_primary_key[0]


def test_home_sends_signed_in_users_to_the_dashboard(sqlite_admin_client: Any) -> None:
    assert sqlite_admin_client.get("/").location.endswith("/dashboard/")


# Anonymous tests use no logged-in fixture: a preserved request context would
# share Flask-Login's cached user with the second client.
def test_anonymous_visitors_are_sent_to_login(sqlite_crm_app: Flask) -> None:
    with sqlite_crm_app.test_client() as anonymous:
        assert "/login/" in anonymous.get("/").location
        assert anonymous.get("/customer/charts/data/by_kind").status_code == 401
        assert anonymous.get("/dashboard/").status_code == 302
        assert not EXTERNAL.findall(anonymous.get("/login/").data.decode())


def test_dashboard_shows_kpis_and_every_chart_of_the_schema(
    sqlite_crm_app: Flask, sqlite_admin_client: Any
) -> None:
    page = sqlite_admin_client.get("/dashboard/").data.decode()
    with sqlite_crm_app.app_context():
        items = state().spec.dashboards["home"]
    charts = [i for i in items if i.chart]
    for item in charts:
        assert f'data-url="/{item.entity}/charts/data/{item.chart}"' in page
    assert page.count('class="sd-kpi"') == len(items) - len(charts)
    assert "Customers" in page and "Order amount" in page
    assert "/static/vendor/echarts/echarts.min.js" in page


def test_dashboard_lists_follow_ups_due_today_and_overdue(
    sqlite_crm_app: Flask, sqlite_admin_client: Any
) -> None:
    token = uuid.uuid4().hex[:6]
    customer = add(sqlite_crm_app, "customer", name=f"Due {token}", kind="company", points=0)
    today = dt.date.today()
    due_today = add(
        sqlite_crm_app,
        "follow_up",
        customer_id=customer,
        content=f"today {token}",
        method="phone",
        followed_at=dt.datetime(2024, 5, 1),
        next_follow_up=today,
    )
    overdue = add(
        sqlite_crm_app,
        "follow_up",
        customer_id=customer,
        content=f"late {token}",
        method="visit",
        followed_at=dt.datetime(2024, 5, 1),
        next_follow_up=today - dt.timedelta(days=3),
    )
    later = add(
        sqlite_crm_app,
        "follow_up",
        customer_id=customer,
        content=f"later {token}",
        method="visit",
        followed_at=dt.datetime(2024, 5, 1),
        next_follow_up=today + dt.timedelta(days=3),
    )
    page = sqlite_admin_client.get("/dashboard/").data.decode()
    assert f'href="/follow_up/show/{due_today}"' in page
    assert f'href="/follow_up/show/{overdue}"' in page
    assert f'href="/follow_up/show/{later}"' not in page
    assert "3 days overdue" in page


def test_entity_chart_page_carries_the_list_filters(sqlite_admin_client: Any) -> None:
    page = sqlite_admin_client.get("/customer/charts/?q=acme&_flt_0_kind=company").data.decode()
    assert 'data-url="/customer/charts/data/by_kind?q=acme&amp;_flt_0_kind=company"' in page
    assert 'href="/customer/list/?q=acme&amp;_flt_0_kind=company"' in page
    assert "Download as PNG" in page


def test_unknown_chart_is_not_found(sqlite_admin_client: Any) -> None:
    assert sqlite_admin_client.get("/customer/charts/data/nope").status_code == 404


def test_no_page_references_an_external_script_style_or_font(
    sqlite_crm_app: Flask, sqlite_admin_client: Any
) -> None:
    pk = add(sqlite_crm_app, "customer", name="Local only", kind="company", points=0)
    pages = [
        "/dashboard/",
        "/customer/list/",
        "/customer/charts/",
        f"/customer/show/{pk}",
        "/customer/add",
        "/follow_up/charts/",
        "/sales_order/charts/",
    ]
    for lang in ("en", "zh"):
        sqlite_admin_client.get(f"/lang/{lang}")
        for url in pages:
            response = sqlite_admin_client.get(url)
            assert response.status_code == 200, url
            html = response.data.decode()
            assert not EXTERNAL.findall(html), (url, EXTERNAL.findall(html))
            assert not CSS_EXTERNAL.findall(html), url
    for path in (STATIC / "charts").iterdir():
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", path.read_text()), path


def test_echarts_is_served_locally_with_its_license(sqlite_admin_client: Any) -> None:
    response = sqlite_admin_client.get("/static/vendor/echarts/echarts.min.js")
    assert response.status_code == 200
    assert b"echarts" in response.data[:2000]
    response.close()
    assert "Apache License" in (STATIC / "vendor" / "echarts" / "LICENSE").read_text()


def test_list_links_to_its_charts_with_the_same_filters(sqlite_admin_client: Any) -> None:
    page = sqlite_admin_client.get("/customer/list/?q=acme").data.decode()
    assert 'href="/customer/charts/?q=acme"' in page
    page = sqlite_admin_client.get("/contact/list/").data.decode()  # contact has no charts
    assert "sd-charts-link" not in page


def test_another_schema_gets_its_dashboard_and_charts(app_factory: Any) -> None:
    """The library example: charts over its own fields, its `due_date` reminder list."""
    from tests.conftest import LIBRARY, login

    app = app_factory(LIBRARY, "sqlite")
    with app.test_client() as client:
        login(client)
        page = client.get("/dashboard/").data.decode()
        assert 'data-entity="loan"' in page  # loan.due_date -> a reminder list
        with app.app_context():
            spec = state().spec
        for entity in spec.entities:
            if not entity.charts:
                continue
            assert client.get(f"/{entity.name}/charts/").status_code == 200
            for chart in entity.charts:
                response = client.get(f"/{entity.name}/charts/data/{chart.name}")
                assert response.status_code == 200, (entity.name, chart.name)
                assert response.get_json()["name"] == chart.name
