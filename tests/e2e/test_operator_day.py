"""The operator's day in Debian's Chromium, in Chinese, at 1400x900 and on a 390x844 phone.

With `schemadesk demo seed` data and its demo login `operator1`: filter customers
by 状态 = 活跃 and a created-date range, save the view and reopen it, create a
customer (the owner is pre-filled), add a follow-up with a date and a time typed
into the form's date-time widget, drag service requests on the kanban (one step
the workflow allows, one it refuses), open the follow-up calendar, bulk-set a
field and export the filtered list. CSRF is on, as in production. Screenshots of
each step go to tests/e2e/artifacts/day-*.png (git-ignored).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from tests.conftest import CRM, build_app
from tests.e2e.conftest import free_port, sign_in_page

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "Demo-E2eOperatorDay1"


@pytest.fixture(scope="module")
def day_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The real app (SQLite, demo data and demo logins, CSRF on) served in a thread."""
    from app.context import Actor, acting_as
    from app.demo import DemoValues, make_logins, seed_demo
    from app.state import state

    tmp = tmp_path_factory.mktemp("e2e_day")
    app = build_app(CRM, f"sqlite:///{tmp / 'day.db'}", tmp / "instance", WTF_CSRF_ENABLED=True)
    with app.app_context():
        people = make_logins(state().spec, DemoValues("zh", 5), PASSWORD)
        with acting_as(Actor(None, "demo", "cli")):
            seed_demo(rows=40, seed=5, logins=people)
        state().db.session.remove()
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    thread.join(timeout=10)


def sql(app: Any, text: str, **params: Any) -> list[Any]:
    from app.state import state

    with app.app_context():
        rows = list(state().db.session.execute(sa.text(text), params))
        state().db.session.commit()
        state().db.session.remove()
        return rows


def operator_employee(app: Any) -> tuple[int, str]:
    row = sql(
        app,
        "SELECT e.id, e.name FROM employee e JOIN ab_user u ON e.account_id = u.id "
        "WHERE u.username = 'operator1'",
    )[0]
    return row[0], row[1]


def requests_for_the_board(app: Any, tag: str) -> dict[str, int]:
    """Two service requests of operator1's customers: one resolved (with satisfaction),
    one new; the operator may close the first, not start the second."""
    from app.state import state

    emp, _ = operator_employee(app)
    customer = sql(app, "SELECT id FROM customer WHERE owner_id = :e ORDER BY id LIMIT 1", e=emp)[
        0
    ][0]
    ids = {}
    with app.app_context():
        model = state().models.model("service_request")
        session = state().db.session
        for status in ("resolved", "new"):
            obj = model(
                title=f"看板-{tag}-{status}-{uuid.uuid4().hex[:4]}",
                customer_id=customer,
                status=status,
                type="repair",
                priority="high",
                satisfaction=5,
                resolved_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
            )
            session.add(obj)
            session.commit()
            ids[status] = obj.id
        session.remove()
    return ids


def shot(page: Any, tag: str, step: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(
        path=str(ARTIFACTS / f"day-{tag}-{step}.png"), full_page=page.viewport_size["width"] >= 768
    )


def sign_in(page: Any, url: str) -> None:
    sign_in_page(page, url, "operator1", PASSWORD)


def count_on_page(page: Any) -> int:
    text = page.locator(".sd-count").inner_text()
    return int("".join(ch for ch in text if ch.isdigit()))


def filter_active_in_range(page: Any, start: dt.date, end: dt.date) -> None:
    if not page.locator("#sd-filter-panel").is_visible():
        page.click(".sd-filter-toggle")
    status = page.locator(".sd-filter", has=page.locator("label", has_text="状态")).first
    status.locator(".select2-selection").click()
    page.click(".select2-results__option:text-is('活跃')")
    page.keyboard.press("Escape")
    page.fill("input[name=f_created_at__from]", start.isoformat())
    page.fill("input[name=f_created_at__to]", end.isoformat())
    page.click(".sd-filter-apply")
    page.wait_for_url("**f_status=active**")


def drag(page: Any, card: Any, column: Any, phone: bool) -> None:
    """Drag `card` onto `column`: the mouse on a desktop, a finger on the grip on a phone."""
    if not phone:
        box = card.locator(".sd-card-title").bounding_box()
        page.mouse.move(box["x"] + 5, box["y"] + 5)
        page.mouse.down()
        page.mouse.move(box["x"] + 30, box["y"] + 30, steps=4)
        target = column.bounding_box()
        page.mouse.move(target["x"] + 60, target["y"] + 60, steps=8)
        page.mouse.up()
        return
    card.scroll_into_view_if_needed()
    cdp = page.context.new_cdp_session(page)
    grip = card.locator(".sd-card-grip").bounding_box()
    x, y = grip["x"] + grip["width"] / 2, grip["y"] + 20
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for _ in range(100):  # hold at the right edge: the board scrolls the column in
        cdp.send(
            "Input.dispatchTouchEvent",
            {"type": "touchMove", "touchPoints": [{"x": 378, "y": y + 10}]},
        )
        page.wait_for_timeout(30)
        target = column.bounding_box()
        if target and target["x"] < 200:
            break
    for _ in range(3):  # settle inside the column, away from the scrolling edges
        target = column.bounding_box()
        cdp.send(
            "Input.dispatchTouchEvent",
            {
                "type": "touchMove",
                "touchPoints": [{"x": max(60, min(target["x"] + 60, 320)), "y": y + 30}],
            },
        )
        page.wait_for_timeout(100)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def column_of(page: Any, pk: int) -> str:
    return page.locator(f'.sd-card[data-id="{pk}"]').evaluate(
        "card => card.closest('.sd-column').dataset.key"
    )


@pytest.mark.parametrize("size", [(1400, 900), (390, 844)], ids=["desktop", "phone"])
def test_operator_day(day_server: tuple[str, Any], browser: Any, size: tuple[int, int]) -> None:
    url, app = day_server
    tag = "desktop" if size[0] > 800 else "phone"
    phone = tag == "phone"
    context = browser.new_context(
        viewport={"width": size[0], "height": size[1]},
        accept_downloads=True,
        locale="zh-CN",
        is_mobile=phone,
        has_touch=phone,
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, url)
    shot(page, tag, "01-dashboard")
    employee_id, employee_name = operator_employee(app)
    from app.records.display import local_today

    today = local_today()
    start, end = today - dt.timedelta(days=365), today

    # 1. customers: 状态 = 活跃 and a created-date range, as chips
    page.goto(f"{url}/customer/list/?sv=none")
    filter_active_in_range(page, start, end)
    mine_active = sql(
        app,
        "SELECT count(*) FROM customer WHERE owner_id = :e AND status = 'active'",
        e=employee_id,
    )[0][0]
    filtered = count_on_page(page)
    assert 0 < filtered <= mine_active
    assert "状态: 活跃" in page.locator(".sd-chips").inner_text()
    shot(page, tag, "02-filtered")

    # 2. save the view, leave, reopen it
    name = f"我的活跃客户-{tag}"
    page.click(".sd-views > button")
    page.fill("#sd-view-name", name)
    page.click(".sd-view-save-btn")
    page.wait_for_url("**sv=**")
    page.goto(f"{url}/customer/list/?sv=none")
    assert page.locator(".sd-chip").count() == 0
    page.click(".sd-views > button")
    page.click(f".sd-view-open:has-text('{name}')")
    page.wait_for_url("**f_status=active**")
    assert count_on_page(page) == filtered
    shot(page, tag, "03-view-reopened")

    # 3. a new customer: the owner is the operator, pre-filled; saving lands on the record
    page.goto(f"{url}/customer/add")
    assert employee_name in page.locator("#owner option:checked").inner_text()
    customer_name = f"晨星贸易-{tag}-{uuid.uuid4().hex[:4]}"
    page.fill("#name", customer_name)
    page.fill("#phone", f"139{uuid.uuid4().int % 10**8:08d}")
    page.select_option("#status", label="活跃")
    shot(page, tag, "04-customer-form")
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_url("**/customer/show/**")
    assert page.locator(".sd-record-name").inner_text() == customer_name
    shot(page, tag, "05-customer-saved")

    # 4. a follow-up at a date AND a time, typed into the date-time widget
    when = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(10, 30))
    next_day = today + dt.timedelta(days=3)
    page.goto(f"{url}/follow_up/add")
    page.select_option("#customer", label=customer_name)
    page.fill("#content", "电话沟通续约，客户要求周四上门演示")
    widget = page.locator("#followed_at")
    if widget.get_attribute("type") == "datetime-local":
        widget.fill(when.strftime("%Y-%m-%dT%H:%M"))
    else:
        widget.fill(when.strftime("%Y-%m-%d %H:%M"))
    page.locator("#next_follow_up").fill(next_day.isoformat())
    shot(page, tag, "06-follow-up-form")
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_url("**/follow_up/show/**")
    assert when.strftime("%Y-%m-%d %H:%M") in page.content()  # shown in the app zone
    stored = sql(app, "SELECT followed_at FROM follow_up ORDER BY id DESC LIMIT 1")[0][0]
    assert str(stored).startswith((when - dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M"))
    shot(page, tag, "07-follow-up-saved")

    # 5. the kanban: close a resolved request by dragging; starting one is refused
    ids = requests_for_the_board(app, tag)
    page.goto(f"{url}/service_request/kanban/")
    shot(page, tag, "08-kanban")
    card = page.locator(f'.sd-card[data-id="{ids["resolved"]}"]')
    drag(page, card, page.locator('.sd-column[data-key="closed"]'), phone)
    page.wait_for_selector(".sd-kanban-status.alert")
    assert "已移至" in page.locator(".sd-kanban-status").inner_text()
    assert column_of(page, ids["resolved"]) == "closed"
    shot(page, tag, "09-kanban-moved")
    page.goto(f"{url}/service_request/kanban/")
    card = page.locator(f'.sd-card[data-id="{ids["new"]}"]')
    drag(page, card, page.locator('.sd-column[data-key="in_progress"]'), phone)
    page.wait_for_selector(".sd-kanban-status.alert")
    assert "开始处理" in page.locator(".sd-kanban-status").inner_text()
    assert column_of(page, ids["new"]) == "new"
    shot(page, tag, "10-kanban-refused")
    states = dict(
        sql(
            app,
            "SELECT id, status FROM service_request WHERE id IN (:a, :b)",
            a=ids["resolved"],
            b=ids["new"],
        )
    )
    assert states == {ids["resolved"]: "closed", ids["new"]: "new"}

    # 6. the calendar: the follow-up on its next date
    page.goto(f"{url}/follow_up/calendar/?month={next_day:%Y-%m}")
    day = page.locator(
        f'.sd-agenda-day[data-date="{next_day.isoformat()}"]'
        if phone
        else f'.sd-cal-day[data-date="{next_day.isoformat()}"]'
    )
    assert customer_name in day.inner_text()
    shot(page, tag, "11-calendar")

    # 7. bulk: set 来源 on two rows of the saved view
    page.goto(f"{url}/customer/list/?sv=none")
    page.click(".sd-views > button")
    page.click(f".sd-view-open:has-text('{name}')")
    page.wait_for_url("**f_status=active**")
    boxes = page.locator(".sd-row-check")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.select_option(".sd-bulk-field", label="来源")
    page.wait_for_selector(".sd-bulk-value select, .sd-bulk-value input")
    page.locator(".sd-bulk-value select").first.select_option(index=1)
    shot(page, tag, "12-bulk")
    page.click(".sd-bulk-set_field")
    page.wait_for_load_state("networkidle")
    assert "已更新 2 条" in page.content()
    shot(page, tag, "13-bulk-done")

    # 8. export the filtered list: the same rows, all 活跃
    if not page.locator(".sd-export-link").first.is_visible():
        page.set_viewport_size({"width": 1400, "height": 900})
    with page.expect_download() as info:
        page.locator(".sd-export-link").first.click()
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text("utf-8-sig"))))
    assert len(rows) - 1 == count_on_page(page)
    assert {r[rows[0].index("状态")] for r in rows[1:]} == {"活跃"}
    page.set_viewport_size({"width": size[0], "height": size[1]})
    shot(page, tag, "14-exported")
    assert not errors, errors
    context.close()
