"""The grid in Debian's Chromium, in Chinese, at 1400x900 and on a 390x844 phone.

An operator's part of the day: filter customers by 状态 = 活跃 and a created-date
range in the panel, see the chips, save the view, reopen it, bulk-set a field
on two rows, export the filtered list (a download). Screenshots of each step go
to tests/e2e/artifacts/ (git-ignored).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from tests.conftest import ADMIN_PASSWORD, CRM, build_app
from tests.e2e.conftest import free_port, sign_in_page

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).parent / "artifacts"
FROM = dt.date.today() - dt.timedelta(days=400)
TO = dt.date.today()


@pytest.fixture(scope="module")
def grid_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The real app (SQLite, demo data) served by werkzeug on 127.0.0.1 in a thread."""
    from app.demo import seed_demo

    tmp = tmp_path_factory.mktemp("e2e_grid")
    # CSRF on, as in production: every POST of the grid must carry its token.
    app = build_app(CRM, f"sqlite:///{tmp / 'grid.db'}", tmp / "instance",
                    WTF_CSRF_ENABLED=True)
    with app.app_context():
        seed_demo(rows=60, seed=11)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    urllib.request.urlopen(url + "/login/", timeout=120).read()  # first page: templates compiled
    yield url, app
    server.shutdown()
    thread.join(timeout=10)


def expected_count(app: Any) -> int:
    """Active customers created in [FROM, TO], counted in SQL."""
    from app.state import state

    with app.app_context():
        zone = ZoneInfo(state().spec.timezone)  # the dates are days in the app's time zone

        def utc(day: dt.date) -> dt.datetime:
            local = dt.datetime.combine(day, dt.time(), tzinfo=zone)
            return local.astimezone(dt.UTC).replace(tzinfo=None)

        return state().db.session.execute(sa.text(
            "SELECT count(*) FROM customer WHERE status = 'active' "
            "AND created_at >= :a AND created_at < :b"),
            {"a": utc(FROM), "b": utc(TO + dt.timedelta(days=1))}).scalar_one()


def sign_in(page: Any, url: str) -> None:
    sign_in_page(page, url, "admin", ADMIN_PASSWORD)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    phone = page.viewport_size["width"] < 768
    page.screenshot(path=str(ARTIFACTS / f"grid-{name}.png"), full_page=not phone)


def filter_active_in_range(page: Any, tag: str) -> None:
    """Open the panel, pick 状态 = 活跃 in its dropdown, type a date range, apply."""
    if not page.locator("#sd-filter-panel").is_visible():
        page.click(".sd-filter-toggle")
    status = page.locator(".sd-filter", has=page.locator("label", has_text="状态")).first
    status.locator(".select2-selection").click()
    page.click(".select2-results__option:text-is('活跃')")
    page.keyboard.press("Escape")
    page.fill("input[name=f_created_at__from]", FROM.isoformat())
    page.fill("input[name=f_created_at__to]", TO.isoformat())
    shot(page, f"{tag}-2-panel")
    page.click(".sd-filter-apply")
    page.wait_for_url("**f_status=active**")


def count_on_page(page: Any) -> int:
    text = page.locator(".sd-count").inner_text()
    return int("".join(ch for ch in text if ch.isdigit()))


@pytest.mark.parametrize("size", [(1400, 900), (390, 844)], ids=["desktop", "phone"])
def test_operator_filters_saves_a_view_bulk_sets_and_exports(
        grid_server: tuple[str, Any], browser: Any, size: tuple[int, int]) -> None:
    url, app = grid_server
    tag = "desktop" if size[0] > 800 else "phone"
    context = browser.new_context(viewport={"width": size[0], "height": size[1]},
                                  accept_downloads=True, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, url)
    page.goto(f"{url}/customer/list/?sv=none")
    shot(page, f"{tag}-1-list")

    filter_active_in_range(page, tag)
    expected = expected_count(app)
    assert expected > 0
    chips = page.locator(".sd-chip")
    assert chips.count() == 2
    assert "状态: 活跃" in chips.nth(0).inner_text()
    assert f"{FROM.isoformat()} – {TO.isoformat()}" in page.locator(".sd-chips").inner_text()
    assert count_on_page(page) == expected
    shot(page, f"{tag}-2-filtered")  # the chips

    # save the view, leave it, reopen it
    name = f"活跃客户-{tag}"
    page.click(".sd-views > button")
    page.fill("#sd-view-name", name)
    page.click(".sd-view-save-btn")
    page.wait_for_url("**sv=**")
    assert name in page.locator(".sd-views > button").inner_text()
    page.goto(f"{url}/customer/list/?sv=none")
    assert page.locator(".sd-chip").count() == 0
    page.click(".sd-views > button")
    page.click(f".sd-view-open:has-text('{name}')")
    page.wait_for_url("**f_status=active**")
    assert page.locator(".sd-chip").count() == 2 and count_on_page(page) == expected
    shot(page, f"{tag}-3-view-reopened")
    page.click(".sd-views > button")
    shot(page, f"{tag}-3a-views-menu")
    page.click(".sd-columns > button")  # closes the views menu, opens the columns
    shot(page, f"{tag}-3b-columns-menu")
    page.click(".sd-columns > button")

    # bulk: set 来源 on the first two rows
    boxes = page.locator(".sd-row-check")
    boxes.nth(0).check()
    boxes.nth(1).check()
    assert page.locator(".sd-bulk-bar").is_visible()
    assert "已选 2 条" in page.locator(".sd-bulk-count").inner_text()
    page.select_option(".sd-bulk-field", label="来源")
    page.wait_for_selector(".sd-bulk-value select, .sd-bulk-value input")
    value = page.locator(".sd-bulk-value select").first
    value.select_option(index=1)
    shot(page, f"{tag}-4-bulk")
    page.click(".sd-bulk-set_field")
    page.wait_for_load_state("networkidle")
    assert "已更新 2 条" in page.content()
    assert page.locator(".sd-chip").count() == 2  # back on the filtered list
    shot(page, f"{tag}-5-bulk-done")

    # export the filtered list (CSV download): exactly the filtered rows
    link = page.locator(".sd-export-link").first
    if not link.is_visible():
        page.set_viewport_size({"width": 1400, "height": 900})
    with page.expect_download() as info:
        page.locator(".sd-export-link").first.click()
    download = info.value
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text("utf-8-sig"))))
    assert len(rows) - 1 == expected
    assert {r[rows[0].index("状态")] for r in rows[1:]} == {"活跃"}
    page.set_viewport_size({"width": size[0], "height": size[1]})

    if tag == "phone":
        # cards, no sideways scroll
        page.goto(page.url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= size[0], width
        assert page.locator("thead").first.is_hidden()
        shot(page, f"{tag}-6-cards")
    assert not errors, errors
    context.close()
