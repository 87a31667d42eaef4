"""Smoke: log in, switch to Chinese, create a customer, see it in the list."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import E2E_PASSWORD, sign_in_page

pytestmark = pytest.mark.e2e


def test_login_switch_to_chinese_create_customer(live_server: str, browser) -> None:  # noqa: ANN001
    page = browser.new_page()
    external: list[str] = []
    page.on(
        "request",
        lambda req: (
            external.append(req.url)
            if not req.url.startswith(live_server) and not req.url.startswith("data:")
            else None
        ),
    )
    sign_in_page(page, live_server, "admin", E2E_PASSWORD)
    page.goto(f"{live_server}/customer/add")
    assert "客户" in page.content()
    name = f"上海测试有限公司-{uuid.uuid4().hex[:4]}"
    page.fill("input[name=name]", name)
    page.fill("input[name=phone]", "13800138000")
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_load_state("networkidle")
    page.goto(f"{live_server}/customer/list/")
    content = page.content()
    assert name in content
    assert "名称" in content  # the column label in Chinese
    assert external == []
    page.close()
