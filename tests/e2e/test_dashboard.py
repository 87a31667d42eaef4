"""The dashboard in Debian's Chromium, in Chinese: every chart drawn, nothing fetched
from another host."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from app.state import state
from tests.conftest import ADMIN_PASSWORD, CRM, build_app
from tests.e2e.conftest import free_port, sign_in_page

pytestmark = pytest.mark.e2e

# True when the canvas holds at least one pixel that is neither transparent nor white.
CANVAS_DRAWN = """(canvas) => {
  const ctx = canvas.getContext('2d');
  const {data} = ctx.getImageData(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0 && (data[i] < 240 || data[i + 1] < 240 || data[i + 2] < 240)) return true;
  }
  return false;
}"""


def seed(app: Any) -> None:
    """A few rows behind every chart of the CRM dashboard."""
    with app.app_context():
        session = state().db.session
        tables = state().models.table

        def insert(entity: str, created: dt.datetime, **values: Any) -> int:
            result = session.execute(
                sa.insert(tables(entity)).values(created_at=created, updated_at=created, **values)
            )
            return result.inserted_primary_key[0]

        owners = [
            insert("employee", dt.datetime(2024, 1, 1), name=name, employee_no=no)
            for name, no in (("王芳", "E01"), ("李强", "E02"))
        ]
        customers = []
        for i in range(12):
            created = dt.datetime(2024, 1 + i % 6, 3 + i)
            customers.append(
                insert(
                    "customer",
                    created,
                    name=f"客户{i}",
                    kind=("company", "person")[i % 2],
                    level="abcd"[i % 4],
                    credit=Decimal(1000 * (i + 1)),
                    owner_id=owners[i % 2],
                    points=0,
                )
            )
            insert(
                "service_request",
                created,
                title=f"工单{i}",
                customer_id=customers[-1],
                status=("new", "in_progress", "resolved")[i % 3],
                satisfaction=1 + i % 5,
            )
            insert(
                "sales_order",
                created,
                order_no=f"SO{i:04d}",
                customer_id=customers[-1],
                amount=Decimal(500 + 10 * i),
                owner_id=owners[i % 2],
                ordered_at=created.date(),
                status="paid",
                quantity=1,
            )
            insert(
                "campaign",
                created,
                name=f"活动{i}",
                channel=("wechat", "douyin")[i % 2],
                leads=10 * i,
                conversions=i,
                status="running",
            )
        today = dt.date.today()
        insert(
            "follow_up",
            dt.datetime(2024, 1, 1),
            customer_id=customers[0],
            content="回访",
            method="phone",
            followed_at=dt.datetime(2024, 1, 1),
            next_follow_up=today,
        )
        session.commit()


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app (SQLite, seeded) served by werkzeug on 127.0.0.1 in a thread."""
    tmp = tmp_path_factory.mktemp("e2e_dashboard")
    app = build_app(CRM, f"sqlite:///{tmp / 'dashboard.db'}", tmp / "instance")
    seed(app)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def test_dashboard_in_chinese_draws_every_chart_locally(dashboard_server: str, browser) -> None:  # noqa: ANN001
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    hosts: set[str] = set()
    page.on("request", lambda req: hosts.add(urlsplit(req.url).hostname or req.url.split(":")[0]))
    sign_in_page(page, dashboard_server, "admin", ADMIN_PASSWORD)
    page.goto(f"{dashboard_server}/dashboard/")
    charts = page.locator(".sd-chart")
    expected = page.evaluate("document.querySelectorAll('.sd-chart').length")
    assert expected == 7
    page.wait_for_function(
        "n => document.querySelectorAll('.sd-chart[data-rendered=\"1\"]').length === n",
        arg=expected,
        timeout=20000,
    )
    page.wait_for_timeout(300)  # let the last frame paint
    for i in range(expected):
        canvas = charts.nth(i).locator("canvas").first
        assert canvas.evaluate(CANVAS_DRAWN), charts.nth(i).get_attribute("data-url")
    content = page.content()
    assert "客户数" in content and "每月新增客户" in content
    assert "下次跟进日期" in content  # the follow-up reminder list, in Chinese
    hosts.discard("127.0.0.1")
    hosts.discard("data")
    hosts.discard("blob")
    assert not hosts, f"requests left 127.0.0.1: {hosts}"
    page.close()
