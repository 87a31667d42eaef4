"""The designer's chart and dashboard forms in Chromium, in Chinese, at 1400×900.

The admin adds a chart from the pickers, then one whose name is taken (the
checker's SD-E166 appears on its row), and puts the new chart on the home
dashboard and moves it up. Screenshots of both forms go to docs/img/ (the
admin guide shows them) and tests/e2e/artifacts/.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.conftest import ADMIN_PASSWORD, CRM, ROOT, build_app
from tests.e2e.conftest import free_port, sign_in_page

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts"
DOCS_IMG = ROOT / "docs" / "img"


@pytest.fixture(scope="module")
def designer_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The CRM console (SQLite) served by werkzeug on 127.0.0.1 in a thread."""
    tmp = tmp_path_factory.mktemp("e2e_designer_forms")
    app = build_app(CRM, f"sqlite:///{tmp / 'designer.db'}", tmp / "instance")
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def shoot(page: Any, element_id: str, name: str) -> None:
    """A 1400×900 screenshot with the panel `element_id` at the top of the window."""
    page.evaluate(f"document.getElementById('{element_id}').scrollIntoView()")
    page.evaluate("window.scrollBy(0, -64)")  # below the fixed top bar
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    page.screenshot(path=str(DOCS_IMG / name))


def test_chart_and_dashboard_forms_in_chinese(designer_server: str, browser) -> None:  # noqa: ANN001
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = context.new_page()
    sign_in_page(page, designer_server, "admin", ADMIN_PASSWORD)
    page.goto(f"{designer_server}/designer/entity/customer#charts")
    form = page.locator(".sd-chart-form")
    assert form.locator("[name=period]").is_hidden()  # a period is for dates only
    form.locator("[name=name]").fill("by_source")
    form.locator("[name=label_zh]").fill("按来源")
    form.locator("[name=label_en]").fill("By source")
    form.locator("[name=type]").select_option("pie")
    form.locator("[name=group_by]").select_option("source")
    with page.expect_navigation():
        form.locator(".sd-save-chart").click()
    assert page.locator("#chart-by_source").is_visible()
    form = page.locator(".sd-chart-form")
    form.locator("[name=name]").fill("by_kind")
    form.locator("[name=group_by]").select_option("created_at")
    assert form.locator("[name=period]").is_visible()
    form.locator("[name=period]").select_option("week")
    with page.expect_navigation():
        form.locator(".sd-save-chart").click()
    rows = page.locator("#charts tr[id='chart-by_kind']")
    assert rows.count() == 2 and "SD-E166" in rows.nth(1).inner_text()
    assert "图表" in page.locator("#charts .panel-heading").inner_text()
    shoot(page, "charts", "designer-charts.png")
    with page.expect_navigation():
        rows.nth(1).locator(".sd-remove-chart").click()  # the refused one goes, the first stays
    assert page.locator("#charts tr[id='chart-by_kind']").count() == 1
    assert page.locator("#charts .sd-problem").count() == 0

    page.goto(f"{designer_server}/designer/#dashboards")
    tiles = page.locator("#dashboard-home .sd-dashboard-item")
    before = tiles.count()
    add = page.locator("#dashboard-home .sd-add-chart-tile")
    add.locator("[name=chart]").select_option("customer.by_source")
    with page.expect_navigation():
        add.locator("button[type=submit]").click()
    assert tiles.count() == before + 1
    with page.expect_navigation():
        tiles.nth(before).locator(".sd-move-up").click()
    assert "customer.by_source" in tiles.nth(before - 1).inner_text()
    assert "仪表盘" in page.locator("#dashboards .panel-heading").inner_text()
    shoot(page, "dashboards", "designer-dashboard.png")
    context.close()
