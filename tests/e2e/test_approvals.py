"""审批 in Chromium, in Chinese: an operator submits an order over 50,000, the
manager sees it in 我的审批 with a badge and approves with a comment, a second
manager approves level 2, and the operator's bell shows the decision.

Screenshots (1400x900 and 390x844) go to $SD_SCREENSHOTS (docs/img when making the docs).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from app.state import state
from tests.conftest import CRM, build_app
from tests.e2e.conftest import free_port, sign_in_page

pytestmark = pytest.mark.e2e
PASSWORD = "Str0ng-Pass-2024!"
SHOTS = os.environ.get("SD_SCREENSHOTS")


def seed(app: Any) -> dict[str, Any]:
    """A sales department: manager 张经理 (the rep's), manager 赵总, operator 王芳 and her order."""
    with app.app_context():
        session = state().db.session
        sm = app.appbuilder.sm
        table = state().models.table

        def insert(entity: str, **values: Any) -> int:
            return session.execute(sa.insert(table(entity)).values(**values)
                                   ).inserted_primary_key[0]

        def user(username: str, first: str, role: str) -> int:
            return sm.add_user(username, first, "", f"{username}@example.com",
                               sm.find_role(role), password=PASSWORD).id

        dept = insert("department", name="华东销售部")
        ids = {"m1": user("zhang", "张经理", "manager"), "m2": user("zhao", "赵总", "manager"),
               "op": user("wang", "王芳", "operator")}
        m1 = insert("employee", name="张经理", employee_no="E100", department_id=dept,
                    account_id=ids["m1"])
        insert("employee", name="赵总", employee_no="E101", department_id=dept,
               account_id=ids["m2"])
        rep = insert("employee", name="王芳", employee_no="E102", department_id=dept,
                     account_id=ids["op"], manager_id=m1)
        customer = insert("customer", name="上海星辰科技有限公司", kind="company", owner_id=rep,
                          points=0)
        order_no = f"SO-{uuid.uuid4().hex[:6].upper()}"
        ids["order"] = insert("sales_order", order_no=order_no, customer_id=customer,
                              amount=Decimal("86000"), quantity=2, status="draft",
                              approval="draft", owner_id=rep)
        ids["order_no"] = order_no
        session.commit()
        return ids


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any], Any]]:
    tmp = tmp_path_factory.mktemp("e2e_approvals")
    app = build_app(CRM, f"sqlite:///{tmp / 'approvals.db'}", tmp / "instance")
    ids = seed(app)
    http = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}", ids, app
    http.shutdown()
    thread.join(timeout=10)


def sign_in(browser: Any, url: str, username: str, width: int = 1400, height: int = 900) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height},
                                  locale="zh-CN")
    page = context.new_page()
    sign_in_page(page, url, username, PASSWORD)
    return page


def shot(page: Any, name: str, scroll_to: Any = None) -> None:
    """Save a screenshot of the viewport (scrolled to `scroll_to`) when SD_SCREENSHOTS is set."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        if scroll_to is not None:
            scroll_to.evaluate("e => e.scrollIntoView({block: 'end'})")
        page.screenshot(path=str(Path(SHOTS) / name), full_page=False)


def test_operator_submits_manager_approves_operator_is_told(server, browser) -> None:  # noqa: ANN001
    url, ids, app = server
    order = f"{url}/sales_order/show/{ids['order']}"

    operator = sign_in(browser, url, "wang")
    operator.goto(order)
    operator.fill("form[action$='/submit'] input[name=comment]", "大客户年度采购")
    operator.click("button.sd-transition[data-step=submit]")
    operator.wait_for_load_state("networkidle")
    assert "审批中" in operator.content()
    assert "已提交审批：第 1 / 2 级，等待 张经理 审批。" in operator.content()
    assert operator.locator("button.sd-transition").count() == 0  # no step while it waits
    shot(operator, "approvals-submitted.png")

    manager = sign_in(browser, url, "zhang")
    badge = manager.locator(".sd-approvals-badge")
    assert badge.inner_text().strip() == "1"
    manager.click(".sd-approvals-nav a")
    manager.wait_for_load_state("networkidle")
    assert "我的审批" in manager.content()
    row = manager.locator(f"tr:has-text('{ids['order_no']}')")
    assert "王芳" in row.inner_text() and "1 / 2" in row.inner_text()
    shot(manager, "approvals-inbox.png")
    phone = sign_in(browser, url, "zhang", 390, 844)
    phone.goto(f"{url}/approvals/")
    assert phone.locator(f"tr:has-text('{ids['order_no']}')").count() == 1
    shot(phone, "approvals-inbox-phone.png")
    row.locator(".sd-approve-form input[name=comment]").fill("同意，价格合理")
    row.locator("button.sd-approve").click()
    manager.wait_for_load_state("networkidle")
    assert "已批准" in manager.content()  # the flash
    assert manager.locator(".sd-approvals-badge").count() == 0

    # Level 2 (role 经理): 赵总 decides from the order's page.
    boss = sign_in(browser, url, "zhao")
    assert boss.locator(".sd-approvals-badge").inner_text().strip() == "1"
    boss.goto(order)
    mine = boss.locator(".sd-approval-mine")
    mine.locator(".sd-approve-form input[name=comment]").fill("批准")
    mine.locator("button.sd-approve").click()
    boss.wait_for_load_state("networkidle")
    history = boss.locator(".sd-approval-history")
    assert history.locator(".sd-approval-decision").count() == 2
    assert "同意，价格合理" in history.inner_text()
    shot(boss, "approvals-history.png", scroll_to=history)

    operator.goto(order)
    assert "已批准" in operator.locator(".sd-approval-history").inner_text()
    bell = operator.locator(".sd-bell-count")
    assert bell.count() == 1 and int(bell.inner_text()) >= 1
    operator.click(".sd-bell a")
    operator.wait_for_load_state("networkidle")
    text = operator.locator(".sd-notification-list").inner_text()
    assert "已批准" in text and ids["order_no"] in text

    with app.app_context():
        rows = state().db.session.execute(sa.select(state().models.system["notification"]).where(
            state().models.system["notification"].c.user_id == ids["op"])).all()
        assert any(r.message.startswith("Approved by") for r in rows)
