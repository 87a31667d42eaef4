"""The console shell: side menu grouped by the schema's `menu`, current page marked,
collapsible on a desktop, off-canvas on a phone, the top bar's slots, error pages.

Runs against the shared live server (the CRM); the menu groups expected are
read from the schema, so the test follows it when the CRM changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.schema.loader import load_spec
from tests.conftest import CRM
from tests.e2e.conftest import E2E_PASSWORD, sign_in_page

pytestmark = pytest.mark.e2e


def _signed_in(browser: Any, live_server: str, width: int, height: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    sign_in_page(page, live_server, "admin", E2E_PASSWORD)
    return page


@pytest.fixture
def desktop(browser: Any, live_server: str) -> Iterator[Any]:
    page = _signed_in(browser, live_server, 1400, 900)
    yield page
    page.context.close()


@pytest.fixture
def phone(browser: Any, live_server: str) -> Iterator[Any]:
    page = _signed_in(browser, live_server, 390, 844)
    yield page
    page.context.close()


def test_side_menu_has_a_group_per_schema_menu_and_marks_the_current_page(
    desktop: Any, live_server: str
) -> None:
    spec = load_spec(CRM)
    entity = spec.entities[-1]
    desktop.goto(f"{live_server}/{entity.name}/list/")
    groups = desktop.locator(".sd-sidebar .sd-menu-group-head .sd-menu-text").all_inner_texts()
    for menu in {e.menu.zh for e in spec.entities}:
        assert menu in groups
    active = desktop.locator(".sd-sidebar a.sd-menu-link.active")
    assert active.count() == 1
    assert active.inner_text().strip() == entity.label.zh
    assert active.get_attribute("aria-current") == "page"
    # Its group is open, the others are folded.
    open_groups = desktop.locator(".sd-menu-group.open .sd-menu-group-head .sd-menu-text")
    assert open_groups.all_inner_texts() == [entity.menu.zh]
    # The breadcrumb repeats where we are.
    crumbs = desktop.locator(".sd-breadcrumb li").all_inner_texts()
    assert [c.strip() for c in crumbs[-2:]] == [entity.menu.zh, entity.label.zh]
    # A detail page keeps the entity marked, and says what the page is.
    desktop.goto(f"{live_server}/{entity.name}/add")
    assert desktop.locator(".sd-sidebar a.sd-menu-link.active").inner_text().strip() == (
        entity.label.zh
    )
    assert desktop.locator(".sd-breadcrumb li").last.inner_text().strip() == "新增"


def test_top_bar_is_one_row_and_has_the_feature_slots(desktop: Any, live_server: str) -> None:
    desktop.goto(f"{live_server}/dashboard/")
    bar = desktop.locator(".sd-topbar").bounding_box()
    assert bar is not None and bar["height"] <= 52  # no second row of menus at 1400 px
    assert desktop.locator(".sd-topbar .sd-brand-name").inner_text() == "客户管理系统"
    assert desktop.locator(".sd-topbar .sd-user").count() == 1
    assert desktop.locator(".sd-topbar .sd-lang").count() == 1
    # The approvals inbox and the notification bell render into the bar when present.
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "app" / "templates"
    source = (templates / "appbuilder" / "navbar_right.html").read_text(encoding="utf-8")
    assert '{% include "approvals/_nav.html" ignore missing %}' in source
    assert '{% include "notify/_nav.html" ignore missing %}' in source


def test_desktop_menu_collapses_to_icons_and_remembers_it(desktop: Any, live_server: str) -> None:
    desktop.goto(f"{live_server}/dashboard/")
    main_left = desktop.locator(".sd-main").bounding_box()["x"]
    desktop.click("[data-sd-menu-toggle]")
    desktop.wait_for_timeout(300)
    assert desktop.locator(".sd-sidebar").bounding_box()["width"] <= 60
    assert desktop.locator(".sd-main").bounding_box()["x"] < main_left
    desktop.reload()
    assert "sd-sidebar-collapsed" in (desktop.locator("body").get_attribute("class") or "")
    desktop.click("[data-sd-menu-toggle]")
    desktop.wait_for_timeout(300)
    assert desktop.locator(".sd-sidebar").bounding_box()["width"] > 150


def test_phone_menu_slides_in_and_out(phone: Any, live_server: str) -> None:
    phone.goto(f"{live_server}/dashboard/")
    sidebar = phone.locator(".sd-sidebar")
    assert sidebar.bounding_box()["x"] + sidebar.bounding_box()["width"] <= 0  # off-canvas
    assert phone.locator(".sd-main").bounding_box()["x"] == 0
    phone.click("[data-sd-menu-toggle]")
    phone.wait_for_timeout(300)
    assert sidebar.bounding_box()["x"] == 0
    # A group opens, and a link in it navigates.
    group = phone.locator(".sd-menu-group").first
    group.locator(".sd-menu-group-head").click()
    link = group.locator("a.sd-menu-link").first
    href = link.get_attribute("href")
    link.click()
    phone.wait_for_load_state("domcontentloaded")
    assert phone.url.split("?")[0].endswith(href.split("?")[0])
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # The backdrop closes an open menu.
    phone.click("[data-sd-menu-toggle]")
    phone.wait_for_timeout(300)
    phone.mouse.click(370, 400)
    phone.wait_for_timeout(300)
    assert sidebar.bounding_box()["x"] + sidebar.bounding_box()["width"] <= 0


def test_forms_are_one_column_on_a_phone(phone: Any, live_server: str) -> None:
    spec = load_spec(CRM)
    entity = spec.entities[0]
    phone.goto(f"{live_server}/{entity.name}/add")
    first = spec.entities[0].fields[0].name
    label = phone.locator("form table tr").first.locator("td, th").first.bounding_box()
    field = phone.locator(f"form [name={first}]").bounding_box()
    assert field["y"] > label["y"] + label["height"] - 1  # the field sits under its label
    assert field["x"] + field["width"] <= 390


def test_error_page_uses_the_layout_and_offers_a_way_back(desktop: Any, live_server: str) -> None:
    desktop.goto(f"{live_server}/dashboard/")
    response = desktop.goto(f"{live_server}/no/such/page")
    assert response.status == 404
    assert desktop.locator(".sd-sidebar").count() == 1
    assert desktop.locator(".sd-error-code").inner_text() == "404"
    assert "页面不存在" in desktop.locator(".sd-error-title").inner_text()
    back = desktop.locator(".sd-error-actions a").first
    assert back.inner_text().strip() == "返回"
    back.click()
    desktop.wait_for_load_state("domcontentloaded")
    assert desktop.url.rstrip("/").endswith("/dashboard")


def test_nothing_loads_from_another_host(browser: Any, live_server: str) -> None:
    page = _signed_in(browser, live_server, 1400, 900)
    outside: list[str] = []
    page.on(
        "request",
        lambda req: (
            outside.append(req.url)
            if not req.url.startswith((live_server, "data:", "blob:"))
            else None
        ),
    )
    for path in ("/dashboard/", "/customer/list/", "/customer/add", "/users/list/"):
        page.goto(live_server + path)
        page.wait_for_load_state("networkidle")
    page.context.close()
    assert outside == []
