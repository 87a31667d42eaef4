"""Two-factor sign-in in Debian's Chromium, in Chinese (两步验证, 在线用户).

The CRM schema with `mfa: required` on the operator role: the operator signs in,
is sent to enrolment, reads the key from the page (no camera: pyotp computes
the code), confirms, signs out, signs in with a code; an admin opens 在线用户
and ends that session; the operator's next click lands on the login page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest
from werkzeug.serving import make_server

from tests.conftest import ADMIN_PASSWORD, CRM, build_app
from tests.e2e.conftest import free_port, sign_in_page

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
OPERATOR_PASSWORD = "Operator-Pass-2024!"
OPERATOR = "zhang_wei"


@pytest.fixture(scope="module")
def mfa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The CRM with `mfa: required` on operator (CSRF on), served in a thread."""
    tmp = tmp_path_factory.mktemp("e2e_mfa")
    schema = tmp / "crm_mfa.yaml"
    text = CRM.read_text(encoding="utf-8")
    marker = "  operator:\n    label: {en: Operator, zh: 操作员}\n"
    assert marker in text
    schema.write_text(text.replace(marker, marker + "    mfa: required\n", 1), encoding="utf-8")
    app = build_app(schema, f"sqlite:///{tmp / 'mfa.db'}", tmp / "instance", tmp / "migrations",
                    WTF_CSRF_ENABLED=True)
    with app.app_context():
        sm = app.appbuilder.sm
        assert sm.add_user(OPERATOR, "伟", "张", "zhang.wei@example.com",
                           sm.find_role("operator"), password=OPERATOR_PASSWORD)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def sign_in(page: Any, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/lang/zh")
    sign_in_page(page, url, username, password, lang=None)


def test_operator_enrols_signs_in_with_code_and_admin_ends_the_session(
        mfa_server: str, browser: Any) -> None:
    url = mfa_server
    operator_ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = operator_ctx.new_page()
    hosts: set[str] = set()
    page.on("request", lambda req: hosts.add(urlsplit(req.url).hostname or "data"))

    # 1. The password alone leads to enrolment, and nothing else is reachable.
    sign_in(page, url, OPERATOR, OPERATOR_PASSWORD)
    assert page.url.endswith("/account/mfa/enrol")
    assert "设置两步验证" in page.content()
    page.goto(f"{url}/customer/list/")
    assert page.url.endswith("/account/mfa/enrol")
    assert page.locator("img[src^='data:image/svg+xml']").count() == 1
    shot(page, "mfa_enrol_zh.png")
    secret = page.text_content("#mfa-secret").strip()
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("form[action$='/account/mfa/confirm'] button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "您的恢复码" in page.content()
    assert page.locator(".sd-recovery-codes code").count() == 10
    shot(page, "mfa_recovery_codes_zh.png")
    page.click("text=我已保存，继续")
    page.wait_for_load_state("networkidle")
    assert "/account/mfa" not in page.url and "/login" not in page.url

    # 2. Sign out, sign in again: the second step asks for a code.
    page.goto(f"{url}/logout/")
    sign_in(page, url, OPERATOR, OPERATOR_PASSWORD)
    assert page.url.endswith("/account/mfa/verify")
    shot(page, "mfa_verify_zh.png")
    # The code that confirmed the enrolment is spent; the next step's code is accepted.
    page.fill("input[name=code]", pyotp.TOTP(secret).at(time.time() + 30))
    page.click("form[action$='/account/mfa/verify'] button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "/account/mfa" not in page.url and "/login" not in page.url
    page.goto(f"{url}/account/security")
    assert "已开启" in page.content()
    shot(page, "account_security_zh.png")

    # 3. The admin opens 在线用户 and ends the operator's session.
    admin_ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    admin = admin_ctx.new_page()
    sign_in(admin, url, "admin", ADMIN_PASSWORD)
    admin.goto(f"{url}/security/sessions/")
    assert "在线用户" in admin.content()
    row = admin.locator("tr", has_text=OPERATOR)
    assert row.count() == 1
    shot(admin, "sessions_zh.png")
    row.locator("button[type=submit]").click()
    admin.wait_for_load_state("networkidle")
    assert "会话已结束" in admin.content()
    assert admin.locator("tr", has_text=OPERATOR).count() == 0
    admin.goto(f"{url}/security/login-log/?user={OPERATOR}")
    log = admin.content()
    assert "会话已结束" in log and "登录" in log
    shot(admin, "login_log_zh.png")

    # 4. The operator's next click lands on the login page.
    page.goto(f"{url}/")
    page.wait_for_load_state("networkidle")
    assert "/login/" in page.url
    assert hosts <= {"127.0.0.1", "data"}, hosts

    # Phone width: the second step and the sessions page stay usable.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    small = phone.new_page()
    sign_in(small, url, OPERATOR, OPERATOR_PASSWORD)
    assert small.url.endswith("/account/mfa/verify")
    shot(small, "mfa_verify_phone_zh.png")
    admin_phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    admin_small = admin_phone.new_page()
    sign_in(admin_small, url, "admin", ADMIN_PASSWORD)
    admin_small.goto(f"{url}/security/sessions/")
    assert admin_small.locator("button:has-text('结束会话')").first.is_visible()
    shot(admin_small, "sessions_phone_zh.png")
    for ctx in (operator_ctx, admin_ctx, phone, admin_phone):
        ctx.close()
