"""No restart: a real gunicorn (2 workers) on PostgreSQL serves a new version within seconds.

The version is applied from this test process (another process than gunicorn's
workers), exactly as the designer does; the form of the entity is polled on
both workers while they switch; no answer may be a 500. A job worker's app
follows the version too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from app.designer.reload import SchemaReloader
from app.designer.versions import apply_change, current_version
from app.jobs import runner
from app.state import state
from tests.conftest import ADMIN_PASSWORD, CRM, ROOT, build_app, new_database
from tests.e2e.conftest import free_port

REMARK = "      remark:   {type: text, label: {en: Remark, zh: 备注}}\n"
WECHAT = "      wechat:   {type: string, max_length: 50, label: {en: WeChat, zh: 微信}}\n"


def start_gunicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
         "--timeout", "120", "app:wsgi()"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/login/", timeout=2)
            return proc
        except requests.RequestException:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()) from None
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("gunicorn did not start in 120 s")


def signed_in(url: str) -> requests.Session:
    session = requests.Session()
    page = session.get(url + "/login/", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    data = {"username": "admin", "password": ADMIN_PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    response = session.post(url + "/login/", data=data, timeout=10, allow_redirects=False)
    assert response.status_code == 302, response.text[:300]
    return session


@pytest.fixture
def crm_pg(tmp_path):
    url = new_database("postgresql", tmp_path)
    app = build_app(CRM, url, tmp_path / "instance", SECRET_KEY="reload-test-secret")
    with app.app_context():
        current_version()  # version 1 from the file
    return app, url, tmp_path


def test_gunicorn_workers_switch_within_seconds_without_a_500(crm_pg):
    app, url, tmp_path = crm_pg
    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, SCHEMA_PATH=str(CRM),
               INSTANCE_PATH=str(tmp_path / "instance"), SECRET_KEY="reload-test-secret",
               RATELIMIT_ENABLED="0", ADMIN_PASSWORD=ADMIN_PASSWORD)
    env.pop("REDIS_URL", None)
    env.pop("MIGRATIONS_DIR", None)
    proc = start_gunicorn(env, port, tmp_path / "gunicorn.log")
    base = f"http://127.0.0.1:{port}"
    try:
        session = signed_in(base)
        for _ in range(10):  # both workers built and serving version 1
            page = session.get(base + "/customer/add", timeout=30)
            assert page.status_code == 200 and 'name="wechat"' not in page.text
        with app.app_context():
            text = current_version().yaml_text.replace(REMARK, REMARK + WECHAT)
            apply_change(text, author="admin", comment="wechat")
        applied = time.monotonic()
        statuses: list[int] = []
        first_seen = None
        while time.monotonic() - applied < 20:
            page = session.get(base + "/customer/add", timeout=30)
            statuses.append(page.status_code)
            if page.status_code == 200 and 'name="wechat"' in page.text and first_seen is None:
                first_seen = time.monotonic() - applied
            if time.monotonic() - applied > 6:
                break
            time.sleep(0.05)
        assert 500 not in statuses, statuses
        assert set(statuses) <= {200, 503}, statuses
        # from here on every worker serves the new field, and the session survived the swap
        for _ in range(20):
            page = session.get(base + "/customer/add", timeout=30)
            assert page.status_code == 200 and 'name="wechat"' in page.text
        assert first_seen is not None and first_seen < 5, (first_seen, statuses)
        print(f"first worker served v2 after {first_seen:.2f}s; "
              f"{len(statuses)} requests during the switch: {sorted(set(statuses))}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = (tmp_path / "gunicorn.log").read_text()
    assert log.count("schema version 2 is now served") == 2, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


def test_dispatcher_and_job_worker_follow_the_version(crm_pg):
    """In one process: the dispatcher swaps at the next check; a worker rebuilds before a job."""
    app, _url, _tmp = crm_pg
    reloader = SchemaReloader(app=app, interval=0.0)
    runner.set_app(app)
    assert reloader.number == 1
    with app.app_context():
        text = current_version().yaml_text.replace(REMARK, REMARK + WECHAT)
        apply_change(text, author="admin", comment="wechat")
    worker_app = runner.refresh_worker_app()
    assert worker_app is not app
    with worker_app.app_context():
        assert state().schema_number == 2
        assert "wechat" in state().models.model("customer").__table__.c
    assert runner.refresh_worker_app() is worker_app  # unchanged version: no rebuild
    assert reloader.check_now() and reloader.number == 2 and reloader.swaps == 1
    client = reloader.app.test_client()
    assert client.get("/login/").status_code == 200
    assert not reloader.check_now()


def test_rq_worker_process_serves_the_new_version(app_factory, redis_url, tmp_path):
    """A running `schemadesk worker` imports into a field added after it started."""
    import csv
    import uuid

    from app.jobs import enqueue, wait
    from tests.jobs.test_jobs import start_worker

    prefix = f"sdtest-{uuid.uuid4().hex[:8]}:"
    app = app_factory(CRM, "postgresql", REDIS_URL=redis_url, JOB_QUEUE_PREFIX=prefix)
    with app.app_context():
        current_version()
    worker = start_worker(app, prefix, burst=False)
    try:
        time.sleep(8)  # the worker has built its app on version 1
        assert worker.poll() is None
        with app.app_context():
            text = current_version().yaml_text.replace(REMARK, REMARK + WECHAT)
            apply_change(text, author="admin", comment="wechat")
        path = tmp_path / "customers.csv"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["名称", "微信"])
            for i in range(3):
                writer.writerow([f"微信客户{i}", f"wx-{i}"])
        with app.app_context():
            run = wait(enqueue("import", {"entity": "customer", "path": str(path), "lang": "zh",
                                          "filename": path.name}), timeout=120)
            assert run["status"] == "done", run["error"]
            with state().db.engine.connect() as conn:
                got = conn.exec_driver_sql(
                    "SELECT wechat FROM customer WHERE wechat LIKE 'wx-%%' ORDER BY wechat"
                ).scalars().all()
        assert got == ["wx-0", "wx-1", "wx-2"]
    finally:
        import signal

        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)


def test_a_request_waiting_too_long_for_the_build_gets_a_clean_503(sqlite_crm_app):
    """While another request builds the new app, a request that waits too long gets 503."""
    from werkzeug.test import Client

    reloader = SchemaReloader(app=sqlite_crm_app, interval=3600, wait=0.2)
    client = Client(reloader)
    assert client.get("/login/").status_code == 200
    reloader._pending = 99  # a newer version was noticed; another request is building it
    with reloader._lock:
        page = client.get("/login/", headers={"Accept-Language": "zh-CN"})
        api = client.get("/api/v1/customer/")
    assert page.status_code == 503 and page.headers["Retry-After"] == "2"
    assert "正在更新架构" in page.get_data(as_text=True)
    assert api.status_code == 503 and api.json["message"]
    reloader._pending = None
    assert client.get("/login/").status_code == 200


def test_the_old_app_is_released_when_its_last_request_ends(crm_pg):
    """A request running during the swap finishes on the old app, which is released after it."""
    from werkzeug.test import EnvironBuilder

    app, _url, _tmp = crm_pg
    reloader = SchemaReloader(app=app, interval=0.0)
    environ = EnvironBuilder(path="/login/").get_environ()
    body = reloader(environ, lambda status, headers, exc_info=None: None)  # not closed yet
    assert app.extensions.get("schemadesk_listeners")
    with app.app_context():
        text = current_version().yaml_text.replace(REMARK, REMARK + WECHAT)
        apply_change(text, author="admin", comment="wechat")
    assert reloader.check_now() and reloader.app is not app
    assert reloader.retiring == 1 and app.extensions.get("schemadesk_listeners")
    assert b"".join(body)  # the running request completes on the old app
    body.close()
    assert reloader.retiring == 0 and not app.extensions.get("schemadesk_listeners")
    # the new app serves, and an idle old app is released at once on the next swap
    new = reloader.app
    assert new.test_client().get("/login/").status_code == 200
    with new.app_context():
        text = current_version().yaml_text.replace(WECHAT, "")
        apply_change(text, author="admin", comment="no wechat", confirmations=["wechat"])
    assert reloader.check_now() and reloader.retiring == 0
    assert not new.extensions.get("schemadesk_listeners")


def test_a_request_that_picked_the_old_app_just_before_its_release_takes_the_new_one(crm_pg):
    """current() handed out the old app, then the swap released it: the request must not
    run on a released app (its audit listeners are gone) but on the new one."""
    from werkzeug.test import EnvironBuilder

    app, _url, _tmp = crm_pg
    reloader = SchemaReloader(app=app, interval=3600.0)
    with app.app_context():
        text = current_version().yaml_text.replace(REMARK, REMARK + WECHAT)
        apply_change(text, author="admin", comment="wechat")
    real_current = reloader.current
    calls = []

    def current_then_swap():  # the swap lands between current() and the request's count
        got = real_current()
        if not calls:
            calls.append(got)
            reloader.check_now()
        return got

    reloader.current = current_then_swap
    statuses = []
    body = reloader(EnvironBuilder(path="/login/").get_environ(),
                    lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(body)
    body.close()
    assert calls == [app] and reloader.app is not app and reloader.number == 2
    assert not app.extensions.get("schemadesk_listeners")  # the old app was released...
    assert statuses == ["200 OK"] and reloader.retiring == 0
    assert reloader.app.extensions.get("schemadesk_listeners")  # ...the request ran on the new
