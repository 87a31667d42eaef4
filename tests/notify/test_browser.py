"""In Chromium (zh): the bell counts, the centre lists and marks read; the webhook log reads.

The console runs as `python run.py` (SQLite, inline jobs and scheduler) with the
CRM's ERP hook switched on by its secret; notifications are written into the
same database through `notify()`. Screenshots at 1400x900 and 390x844 go to
tests/e2e/artifacts/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import E2E_PASSWORD, ROOT, free_port, sign_in_page

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    instance = tmp_path_factory.mktemp("notify_e2e")
    port = free_port()
    env = dict(os.environ, INSTANCE_PATH=str(instance), ADMIN_PASSWORD=E2E_PASSWORD,
               RATELIMIT_ENABLED="0", ERP_HOOK_SECRET="e2e-secret")
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen([sys.executable, "run.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/login/", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                output = proc.stdout.read().decode() if proc.stdout else "no start"
                raise RuntimeError(output) from None
            time.sleep(0.3)
    yield url, instance
    proc.terminate()
    proc.wait(timeout=10)


def seed(instance: Path) -> int:
    """Three notifications for admin about a customer, one about nothing; return the customer."""
    from app import create_app
    from app.i18n import N_
    from app.notify import notify
    from app.records import records
    from app.state import state

    os.environ["ERP_HOOK_SECRET"] = "e2e-secret"  # this process writes an order: its hook is on
    app = create_app({"INSTANCE_PATH": str(instance),
                      "DATABASE_URL": f"sqlite:///{instance / 'schemadesk.db'}"})
    with app.app_context():
        admin = app.appbuilder.sm.find_user(username="admin")
        customer = records("customer", None).create({"name": "华东精密制造有限公司"})
        session = state().db.session
        for date in ("2026-11-25", "2026-11-26"):
            notify(session, [admin.id], N_("Reminder: %(record)s (%(field)s: %(date)s)"),
                   {"field": {"en": "Next follow-up", "zh": "下次跟进日期"}, "date": date,
                    "_text": {"en": "Follow up tomorrow: %(record)s",
                              "zh": "明天需跟进：%(record)s"}},
                   entity="customer", record_id=customer.id)
        notify(session, [admin.id], N_("Reminder: %(record)s (%(field)s: %(date)s)"),
               {"field": {"en": "Birthday", "zh": "生日"}, "date": "2026-11-24"},
               entity="customer", record_id=customer.id)
        session.commit()
        records("sales_order", None).create({"order_no": "SO-E2E-1", "customer": customer.id,
                                             "amount": Decimal("1200.00")})
        return int(customer.id)


def shoot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_bell_centre_and_webhook_log_in_chinese(console: tuple[str, Path], browser: Any) -> None:
    url, instance = console
    customer = seed(instance)
    for width, height in ((1400, 900), (390, 844)):
        page = browser.new_page(viewport={"width": width, "height": height})
        sign_in_page(page, url, "admin", E2E_PASSWORD)
        page.goto(url + "/notifications/")
        if width == 1400:
            assert page.locator(".sd-bell .sd-bell-count").inner_text() == "3"
        assert page.locator(".sd-notification.sd-unread").count() == (3 if width == 1400 else 0)
        text = page.locator(".sd-notification-list").inner_text()
        assert "明天需跟进：华东精密制造有限公司" in text
        assert "提醒：华东精密制造有限公司（生日：2026-11-24）" in text
        assert page.locator(f"a[href='/customer/show/{customer}']").count() == 3
        shoot(page, f"notifications-zh-{width}.png")
        if width == 1400:
            page.locator(".sd-notification.sd-unread form button").first.click()
            assert page.locator(".sd-bell .sd-bell-count").inner_text() == "2"
            page.click("text=全部标为已读")
            assert page.locator(".sd-notification.sd-unread").count() == 0
            assert page.locator(".sd-bell .sd-bell-count").count() == 0
        page.goto(url + "/webhooks/")
        assert "erp_orders" in page.content() and "e2e-secret" not in page.content()
        assert page.locator(".sd-deliveries tr[data-status]").count() == 1
        page.wait_for_timeout(500)
        shoot(page, f"webhooks-zh-{width}.png")
        page.close()
