"""Erasure in the browser: an admin erases a customer by typing its title; the retention page."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E_PASSWORD, sign_in_page

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).resolve().parent / "artifacts"


def test_admin_erases_a_customer_by_typing_its_title(live_server: str, browser) -> None:  # noqa: ANN001
    SHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    sign_in_page(page, live_server, "admin", E2E_PASSWORD)
    name = f"销毁测试客户-{random.randrange(10**6)}"
    page.goto(f"{live_server}/customer/add")
    page.fill("input[name=name]", name)
    page.fill("input[name=id_no]", "110101199003071234")
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_load_state("networkidle")
    page.click("a.btn-danger:has-text('销毁个人信息')")
    page.wait_for_load_state("networkidle")
    assert "/privacy/erase/customer/" in page.url
    page.screenshot(path=str(SHOTS / "privacy-erase-1400.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "privacy-erase-390.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.fill("#sd-erase-confirm", name)
    page.click("button.btn-danger:has-text('销毁')")
    page.wait_for_load_state("networkidle")
    assert "已销毁 #" in page.content()
    page.goto(f"{live_server}/customer/list/")
    assert name not in page.content()
    page.goto(f"{live_server}/privacy/retention/")
    assert "保存期限" in page.content()
    page.screenshot(path=str(SHOTS / "privacy-retention-1400.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "privacy-retention-390.png"), full_page=True)
    page.close()
