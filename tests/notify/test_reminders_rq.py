# ruff: noqa: E501
"""Reminders on RQ's scheduler: two real `schemadesk worker --with-scheduler` processes, one event, one notification."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.state import state
from tests.conftest import CRM, ROOT
from tests.notify.conftest import add_record, make_person, unique


@pytest.fixture(params=["postgresql"])
def rq_app(request: pytest.FixtureRequest, app_factory: Any, redis_url: str) -> Flask:
    prefix = f"sdtest-{uuid.uuid4().hex[:8]}:"
    return app_factory(CRM, request.param, REDIS_URL=redis_url, JOB_QUEUE_PREFIX=prefix,
                       REMINDER_INTERVAL=2)


def start_worker(app: Flask, name: str) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               SCHEMA_PATH=app.config["SCHEMA_PATH"], INSTANCE_PATH=app.config["INSTANCE_PATH"],
               REDIS_URL=app.config["REDIS_URL"], JOB_QUEUE_PREFIX=app.config["JOB_QUEUE_PREFIX"],
               REMINDER_INTERVAL="2", RATELIMIT_ENABLED="0")
    return subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "worker", "--with-scheduler",
         "--name", name], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_two_workers_with_schedulers_notify_an_overdue_request_once(rq_app: Flask) -> None:
    owner = make_person(rq_app, "operator")
    managers = [make_person(rq_app, "manager") for _ in range(2)]
    customer = add_record(rq_app, "customer", {"name": unique("C "), "owner": owner["employee_id"]})
    request_id = add_record(rq_app, "service_request", {"title": unique("Slow "), "customer": customer})
    with rq_app.app_context():
        table = state().models.table("service_request")
        with state().db.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.id == request_id).values(
                created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=25)))
    workers = [start_worker(rq_app, f"w{i}-{uuid.uuid4().hex[:6]}") for i in range(2)]
    passes: set[Any] = set()
    try:
        deadline = time.monotonic() + 150  # two workers start two apps: slow when busy
        while time.monotonic() < deadline and len(passes) < 4:
            with rq_app.app_context():
                runs = state().models.system["reminder_run"]
                with state().db.engine.connect() as conn:
                    passes.update(conn.execute(sa.select(runs.c.last_run_at).where(
                        runs.c.rule == "service_request_sla")).scalars())
            time.sleep(0.5)
    finally:
        outputs = []
        for worker in workers:
            os.killpg(worker.pid, 15)
            outputs.append(worker.communicate(timeout=30)[0].decode(errors="replace"))
    assert len(passes) >= 4, outputs  # the scheduler kept ticking, slot after slot
    with rq_app.app_context():
        table = state().models.system["notification"]
        with state().db.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.user_id).where(
                table.c.dedupe_key.like(f"reminder:service_request_sla:{request_id}:%"))).scalars().all()
    assert sorted(rows) == sorted(m["user_id"] for m in managers)
