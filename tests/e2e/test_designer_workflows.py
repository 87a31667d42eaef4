"""The designer's workflow form in Chromium, in Chinese, at 1400×900.

The admin adds a step to the service request workflow from the pickers (from
新建 to 处理中), reviews and applies the draft, and the service request's
record page then offers the new step as a button. A screenshot of the workflow
section goes to docs/img/ (the admin guide shows it) and tests/e2e/artifacts/.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from app.designer.reload import SchemaReloader
from app.state import state
from tests.conftest import ADMIN_PASSWORD, CRM, build_app
from tests.e2e.conftest import free_port, sign_in_page
from tests.e2e.test_designer_forms import shoot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The CRM console (SQLite) in a thread behind the hot reload, with one new service
    request: (url, its id)."""
    tmp = tmp_path_factory.mktemp("e2e_designer_workflows")
    app = build_app(CRM, f"sqlite:///{tmp / 'designer.db'}", tmp / "instance")
    with app.app_context():
        session = state().db.session
        table = state().models.table
        customer = session.execute(sa.insert(table("customer")).values(
            name="华东机械", kind="company", points=0)).inserted_primary_key[0]
        request_id = session.execute(sa.insert(table("service_request")).values(
            title="设备异响", customer_id=customer, status="new", type="repair",
            priority="high")).inserted_primary_key[0]
        session.commit()
    # served as in production: the dispatcher swaps in the app of a newly applied version
    server = make_server("127.0.0.1", free_port(), SchemaReloader(app=app, interval=0.5),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", request_id
    server.shutdown()
    thread.join(timeout=10)


def test_step_added_in_the_designer_is_offered_on_the_record_page(
        workflow_server: tuple[str, int], browser: Any) -> None:
    url, request_id = workflow_server
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = context.new_page()
    sign_in_page(page, url, "admin", ADMIN_PASSWORD)
    page.goto(f"{url}/service_request/show/{request_id}")
    assert page.locator(".sd-transition[data-step=start]").is_visible()
    assert page.locator(".sd-transition[data-step=escalate]").count() == 0

    page.goto(f"{url}/designer/entity/service_request#workflow")
    section = page.locator("#workflow")
    assert "业务流程" in section.locator(".panel-heading").inner_text()
    assert section.locator("tr.sd-step").count() == 4
    form = section.locator(".sd-step-form")
    form.locator("[name=name]").fill("escalate")
    form.locator("[name=label_zh]").fill("紧急处理")
    form.locator("[name=label_en]").fill("Escalate")
    form.locator("[name=from][value=new]").check()
    form.locator("[name=to]").select_option("in_progress")
    form.locator("[name=roles][value=manager]").check()
    with page.expect_navigation():
        form.locator(".sd-save-step").click()
    row = page.locator("#step-escalate")
    assert row.is_visible() and "紧急处理" in row.inner_text() and "经理" in row.inner_text()
    assert page.locator("#workflow .sd-problem").count() == 0
    shoot(page, "workflow", "designer-workflow.png")

    with page.expect_navigation():
        page.locator(".sd-review").click()
    assert "escalate" in page.locator("body").inner_text()
    page.fill("#sd-comment", "加一个紧急处理步骤")
    with page.expect_navigation():
        page.click(".sd-apply")
    assert "/designer/versions" in page.url, page.locator("body").inner_text()[:2000]

    deadline = time.monotonic() + 30  # every process serves a new version within seconds
    while True:
        page.goto(f"{url}/service_request/show/{request_id}")
        step = page.locator(".sd-transition[data-step=escalate]")
        if step.count() or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert step.is_visible() and step.inner_text().strip() == "紧急处理"
    context.close()
