# ruff: noqa: E501
"""Webhooks reach a real local receiver signed, are retried after a 500, and are logged.

A small schema of its own (a ticket with a workflow and a sensitive field),
hooked on every event; the receiver (http.server in a thread) answers 500 to
the first POST of each delivery and 200 after. Inline (a thread, SQLite) and
RQ (a real `schemadesk worker --with-scheduler`, PostgreSQL + Redis).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.records.service import records
from app.state import state
from tests.conftest import ADMIN_PASSWORD, ROOT, login

SECRET_ENV = "SD_TEST_HOOK_SECRET"
SECRET = "s3cret-" + uuid.uuid4().hex[:6]

SCHEMA = """\
version: 1
app:
  title: {en: Hooks, zh: 推送}
  default_locale: zh
entities:
  ticket:
    label: {en: Ticket, zh: 工单}
    title: title
    fields:
      title: {type: string, required: true, label: {en: Title, zh: 标题}}
      phone: {type: phone, sensitive: true, label: {en: Phone, zh: 电话}}
      status:
        type: enum
        default: open
        label: {en: Status, zh: 状态}
        choices: {open: {en: Open, zh: 打开}, done: {en: Done, zh: 完成}}
    workflow:
      field: status
      initial: open
      transitions:
        - {name: finish, from: open, to: done, label: {en: Finish, zh: 完成}}
roles:
  clerk:
    label: {en: Clerk, zh: 职员}
    grants:
      ticket: [read, create, update]
webhooks:
  - {name: erp, entity: ticket, on: [create, update, delete, transition], url: "http://127.0.0.1:PORT/hook", secret_env: SD_TEST_HOOK_SECRET, retries: 3}
  - {name: crm_full, entity: ticket, on: [create], url: "http://127.0.0.1:PORT/full", secret_env: SD_TEST_HOOK_SECRET, sensitive: true, retries: 0}
"""


class Receiver:
    """A real HTTP server: 500 on the first POST of each delivery, then 200; keeps what came."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                delivery = self.headers.get("X-SchemaDesk-Delivery", "")
                first = delivery not in receiver.seen
                receiver.seen.add(delivery)
                receiver.received.append({"path": self.path, "body": body,
                                          "headers": self.headers, "answered": 500 if first else 200})
                self.send_response(500 if first else 200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, path: str = "/hook") -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.received if r["path"] == path]


@pytest.fixture(scope="module")
def receiver() -> Any:
    os.environ[SECRET_ENV] = SECRET
    server = Receiver()
    yield server
    server.server.shutdown()


def hook_app(app_factory: Any, tmp_path_factory: Any, port: int, backend: str, **config: Any) -> Flask:
    schema = tmp_path_factory.mktemp("hooks") / "hooks.yaml"
    schema.write_text(SCHEMA.replace("PORT", str(port)), encoding="utf-8")
    return app_factory(schema, backend, **config)


def deliveries(app: Flask, record_id: int) -> list[dict[str, Any]]:
    with app.app_context():
        table = state().models.system["webhook_delivery"]
        with state().db.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(table).where(
                table.c.record_id == record_id).order_by(table.c.id)).mappings()]


def wait_until(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def verify(entry: dict[str, Any]) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), entry["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(entry["headers"].get("X-SchemaDesk-Signature", ""), expected)


@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_inline_webhooks_are_signed_retried_logged_and_masked(app_factory: Any, tmp_path_factory: Any,
                                                               receiver: Receiver, backend: str) -> None:
    app = hook_app(app_factory, tmp_path_factory, receiver.port, backend, WEBHOOK_RETRY_INTERVALS="1")
    with app.app_context():
        ticket = records("ticket", None).create({"title": "Printer jammed", "phone": "13800138000"})
        ticket_id = ticket.id
        state().db.session.remove()
    wait_until(lambda: [d["status"] for d in deliveries(app, ticket_id)] == ["ok", "failed"]
               or sorted(d["status"] for d in deliveries(app, ticket_id)) == ["failed", "ok"])
    erp, full = sorted(deliveries(app, ticket_id), key=lambda d: d["hook"])[::-1]
    assert erp["hook"] == "erp" and erp["status"] == "ok" and erp["attempts"] == 2 and erp["status_code"] == 200
    assert full["hook"] == "crm_full" and full["status"] == "failed" and full["attempts"] == 1  # retries: 0
    assert full["last_error"].startswith("HTTP 500") and "Traceback" not in full["last_error"]
    posts = [r for r in receiver.received if r["path"] == "/hook"
             and json.loads(r["body"])["delivery_id"] == erp["delivery_id"]]
    assert [p["answered"] for p in posts] == [500, 200]
    assert all(verify(p) for p in posts) and posts[0]["body"] == posts[1]["body"]
    assert hashlib.sha256(posts[0]["body"]).hexdigest() == erp["body_hash"]
    body = json.loads(posts[1]["body"])
    assert body["event"] == "create" and body["entity"] == "ticket" and body["id"] == ticket_id
    assert body["record"]["title"] == "Printer jammed" and body["record"]["status"] == "open"
    assert body["record"]["phone"] != "13800138000" and "*" in body["record"]["phone"]  # masked
    assert posts[1]["headers"].get("X-SchemaDesk-Timestamp", "").isdigit()
    full_body = json.loads(next(r["body"] for r in receiver.received if r["path"] == "/full"))
    assert full_body["record"]["phone"] == "13800138000"  # sensitive: true

    # a transition, an update and a delete each post their event; a rolled-back write posts nothing
    with app.app_context():
        service = records("ticket", None)
        service.transition(service.get(ticket_id), "finish")
        obj = service.get(ticket_id)
        obj.title = "never saved"
        service.session.flush()
        service.session.rollback()
        service.update(service.get(ticket_id), {"title": "Printer fixed"})
        service.delete(service.get(ticket_id))
        state().db.session.remove()
    wait_until(lambda: sum(1 for d in deliveries(app, ticket_id) if d["status"] == "ok") == 4)
    events = [d["event"] for d in deliveries(app, ticket_id) if d["hook"] == "erp"]
    assert events == ["create", "transition", "update", "delete"]
    titles = [b["record"]["title"] for b in receiver.bodies() if b["id"] == ticket_id]
    assert "never saved" not in titles and "Printer fixed" in titles

    # the log page: admins only, no secret, no body; re-send posts the same delivery again
    with app.test_client() as client:
        login(client)
        page = client.get("/webhooks/").get_data(as_text=True)
        assert erp["delivery_id"] in page and SECRET not in page and "Printer" not in page
        assert SECRET_ENV in page  # the variable's name is shown, never its value
        before = len(receiver.received)
        assert client.post(f"/webhooks/{full['delivery_id']}/resend").status_code == 302
        wait_until(lambda: next(d for d in deliveries(app, ticket_id) if d["hook"] == "crm_full"
                                and d["event"] == "create")["status"] == "ok")
        assert len(receiver.received) == before + 1


def test_webhook_log_is_for_admins_only(app_factory: Any, tmp_path_factory: Any, receiver: Receiver) -> None:
    app = hook_app(app_factory, tmp_path_factory, receiver.port, "sqlite")
    with app.app_context():
        sm = app.appbuilder.sm
        name = f"clerk-{uuid.uuid4().hex[:6]}"
        sm.add_user(name, "C", "T", f"{name}@example.com", sm.find_role("clerk"),
                    password=ADMIN_PASSWORD)
        state().db.session.remove()
    with app.test_client() as client:
        assert client.get("/webhooks/").status_code == 302  # to the sign-in page
        login(client, name, ADMIN_PASSWORD)
        assert client.get("/webhooks/").status_code == 403
        assert client.post("/webhooks/x/resend").status_code == 403


def test_rq_worker_retries_a_webhook_after_a_500(app_factory: Any, tmp_path_factory: Any,
                                                  receiver: Receiver, redis_url: str) -> None:
    prefix = f"sdtest-{uuid.uuid4().hex[:8]}:"
    app = hook_app(app_factory, tmp_path_factory, receiver.port, "postgresql", REDIS_URL=redis_url,
                   JOB_QUEUE_PREFIX=prefix, WEBHOOK_RETRY_INTERVALS="1")
    with app.app_context():
        ticket_id = records("ticket", None).create({"title": "Via RQ", "phone": "13900139000"}).id
        state().db.session.remove()
    assert [d["status"] for d in deliveries(app, ticket_id)] == ["pending", "pending"]
    env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               SCHEMA_PATH=app.config["SCHEMA_PATH"], INSTANCE_PATH=app.config["INSTANCE_PATH"],
               MIGRATIONS_DIR=app.config["MIGRATIONS_DIR"] or "", REDIS_URL=redis_url,
               JOB_QUEUE_PREFIX=prefix, WEBHOOK_RETRY_INTERVALS="1", RATELIMIT_ENABLED="0")
    worker = subprocess.Popen([sys.executable, "-c", "from app.cli import main; main()", "worker",
                               "--with-scheduler"], cwd=ROOT, env=env, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    delivered = False
    try:
        deadline = time.monotonic() + 180  # a worker starts an app: slow on a busy machine
        while not delivered and time.monotonic() < deadline and worker.poll() is None:
            delivered = any(d["hook"] == "erp" and d["status"] == "ok"
                            for d in deliveries(app, ticket_id))
            time.sleep(0.3)
    finally:
        os.killpg(worker.pid, 15)
        out = worker.communicate(timeout=30)[0].decode(errors="replace")
    assert delivered, (deliveries(app, ticket_id), out[-3000:])
    erp = next(d for d in deliveries(app, ticket_id) if d["hook"] == "erp")
    assert erp["attempts"] == 2 and erp["status_code"] == 200, out[-2000:]
    posts = [r for r in receiver.received if json.loads(r["body"])["delivery_id"] == erp["delivery_id"]]
    assert [p["answered"] for p in posts] == [500, 200] and all(verify(p) for p in posts)


def test_hooks_are_off_while_their_secret_is_unset(app_factory: Any, tmp_path_factory: Any,
                                                   receiver: Receiver, monkeypatch: Any) -> None:
    app = hook_app(app_factory, tmp_path_factory, receiver.port, "sqlite")
    monkeypatch.delenv(SECRET_ENV)
    with app.app_context():
        ticket_id = records("ticket", None).create({"title": "Quiet"}).id
        state().db.session.remove()
    assert deliveries(app, ticket_id) == []



def test_imported_rows_are_delivered_like_form_writes(app_factory: Any, tmp_path_factory: Any,
                                                      receiver: Receiver) -> None:
    """An import writes with multi-row statements, not ORM objects: its rows still post."""
    from app.io.importer import import_file

    app = hook_app(app_factory, tmp_path_factory, receiver.port, "sqlite", WEBHOOK_RETRY_INTERVALS="1")
    path = tmp_path_factory.mktemp("hook_import") / "tickets.csv"
    marker = uuid.uuid4().hex[:6]
    path.write_text(f"标题,电话\nImported A {marker},13900000001\nImported B {marker},13900000002\n",
                    encoding="utf-8")
    with app.app_context():
        result = import_file("ticket", path)
        assert result.counts()["created"] == 2, result.counts()
        table = state().models.table("ticket")
        with state().db.engine.connect() as conn:
            ids = [r.id for r in conn.execute(sa.select(table.c.id).where(
                table.c.title.like(f"%{marker}")))]
        state().db.session.remove()
    assert len(ids) == 2
    for record_id in ids:
        wait_until(lambda rid=record_id: any(d["hook"] == "erp" and d["status"] == "ok"
                                             for d in deliveries(app, rid)))
        erp = [d for d in deliveries(app, record_id) if d["hook"] == "erp"]
        assert [d["event"] for d in erp] == ["create"]
    # the receiver serves every app of the module: ids repeat across apps, the marker does not
    bodies = [b for b in receiver.bodies()
              if b["id"] in ids and marker in str(b["record"].get("title"))]
    assert {b["record"]["title"] for b in bodies} == {f"Imported A {marker}", f"Imported B {marker}"}
    assert all("*" in b["record"]["phone"] for b in bodies)  # masked as in any other write
