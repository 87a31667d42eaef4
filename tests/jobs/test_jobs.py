"""Jobs on the inline runner and on RQ with a real `schemadesk worker` process."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.jobs import enqueue, get_run, mark_dead_runs, rerun, update_run, wait
from app.state import state
from tests.conftest import CRM, phone_in

ROOT = Path(__file__).resolve().parents[2]


def phone() -> str:
    return "137" + str(uuid.uuid4().int)[:8]


def customer_file(tmp_path: Path, phones: list[str]) -> Path:
    path = tmp_path / f"c-{uuid.uuid4().hex[:6]}.csv"
    with open(path, "w", encoding="gbk", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["名称", "电话", "信用额度"])
        for i, p in enumerate(phones):
            writer.writerow([f"客户{i}", p, "-1" if i == 0 else str(i)])
    return path


def count_customers(app: Flask, phones: list[str]) -> int:
    with app.app_context():
        table = state().models.table("customer")
        return state().db.session.execute(
            sa.select(sa.func.count()).select_from(table).where(phone_in(phones))
        ).scalar_one()


def worker_env(app: Flask, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        SCHEMA_PATH=app.config["SCHEMA_PATH"],
        INSTANCE_PATH=app.config["INSTANCE_PATH"],
        REDIS_URL=app.config["REDIS_URL"],
        JOB_QUEUE_PREFIX=prefix,
        RATELIMIT_ENABLED="0",
    )
    return env


def start_worker(app: Flask, prefix: str, burst: bool = True) -> subprocess.Popen:
    """Start `schemadesk worker` as a real process on the app's database and Redis."""
    return subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "worker",
         *(["--burst"] if burst else [])],
        cwd=ROOT, env=worker_env(app, prefix), start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def inline_app(app_factory: Any) -> Flask:
    return app_factory(CRM, "sqlite")


@pytest.fixture(params=["sqlite", "postgresql"])
def rq_app(request: pytest.FixtureRequest, app_factory: Any, redis_url: str) -> Flask:
    prefix = f"sdtest-{uuid.uuid4().hex[:8]}:"
    return app_factory(CRM, request.param, REDIS_URL=redis_url, JOB_QUEUE_PREFIX=prefix,
                       JOB_DEAD_AFTER=2, JOB_HEARTBEAT_SECONDS=0.5)


def test_inline_runner_records_progress_and_result(inline_app: Flask, tmp_path: Path) -> None:
    phones = [phone() for _ in range(4)]
    path = customer_file(tmp_path, phones)
    with inline_app.app_context():
        run_id = enqueue("import", {"entity": "customer", "path": str(path), "lang": "en",
                                    "filename": path.name})
        run = wait(run_id, timeout=60)
    assert run["status"] == "done", run["error"]
    assert run["counts"] == {"total": 4, "created": 3, "updated": 0, "unchanged": 0,
                             "rejected": 1}
    assert run["progress"] == 100 and run["processed"] == 4 and run["total"] == 4
    assert run["error_file"] and Path(run["error_file"]).is_file()
    assert run["started_at"] and run["finished_at"] and run["attempts"] == 1
    assert count_customers(inline_app, phones) == 3


def test_inline_failure_is_recorded(inline_app: Flask, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with inline_app.app_context():
        run = wait(enqueue("import", {"entity": "customer", "path": str(empty),
                                      "lang": "en"}), timeout=30)
    assert run["status"] == "failed"
    assert run["error"] == "The file is empty."
    assert run["attempts"] == 2  # the import kind retries once


def test_rq_worker_runs_import_and_survives_redis_flush(rq_app: Flask, tmp_path: Path) -> None:
    phones = [phone() for _ in range(5)]
    path = customer_file(tmp_path, phones)
    prefix = rq_app.config["JOB_QUEUE_PREFIX"]
    with rq_app.app_context():
        run_id = enqueue("import", {"entity": "customer", "path": str(path), "lang": "zh",
                                    "filename": path.name})
        assert get_run(run_id)["status"] == "queued"
        assert get_run(run_id)["rq_job_id"]
    worker = start_worker(rq_app, prefix)
    out, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, out.decode()
    with rq_app.app_context():
        run = get_run(run_id)
    assert run["status"] == "done", (run["error"], out.decode())
    assert run["counts"]["created"] == 4 and run["counts"]["rejected"] == 1
    assert count_customers(rq_app, phones) == 4
    # the record lives in the database, not in Redis
    from redis import Redis

    Redis.from_url(rq_app.config["REDIS_URL"]).delete(f"rq:job:{run['rq_job_id']}")
    with rq_app.app_context():
        assert get_run(run_id)["status"] == "done"
        # re-importing the same file through the worker changes nothing
        again = enqueue("import", {"entity": "customer", "path": str(path), "lang": "en"})
    worker = start_worker(rq_app, prefix)
    worker.communicate(timeout=120)
    with rq_app.app_context():
        assert get_run(again)["counts"]["unchanged"] == 4
    assert count_customers(rq_app, phones) == 4


def test_killed_worker_leaves_job_failed_and_it_can_run_again(rq_app: Flask) -> None:
    prefix = rq_app.config["JOB_QUEUE_PREFIX"]
    with rq_app.app_context():
        run_id = enqueue("wait", {"seconds": 4})
    worker = start_worker(rq_app, prefix, burst=False)
    try:
        deadline = time.monotonic() + 60
        with rq_app.app_context():
            while get_run(run_id)["status"] != "running":
                assert time.monotonic() < deadline, "the worker never started the job"
                time.sleep(0.2)
            horse = int(get_run(run_id)["worker"].rsplit(":", 1)[1])
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker ...
        worker.wait(timeout=30)
    os.kill(horse, signal.SIGKILL)  # ... and the work horse running the job
    with rq_app.app_context():
        assert get_run(run_id)["status"] == "running"
        time.sleep(3)  # JOB_DEAD_AFTER=2: the heartbeat is now stale
        assert mark_dead_runs() >= 1
        dead = get_run(run_id)
        assert dead["status"] == "failed" and "stopped" in dead["error"]
        again = rerun(run_id)
    worker = start_worker(rq_app, prefix)
    out, _ = worker.communicate(timeout=120)
    with rq_app.app_context():
        assert get_run(again)["status"] == "done", out.decode()
        assert get_run(run_id)["status"] == "failed"


def test_cancelled_queued_job_is_skipped(inline_app: Flask) -> None:
    from app.jobs import cancel, execute

    with inline_app.app_context():
        inline_app.config["JOB_INLINE_SYNC"] = True
        try:
            run_id = enqueue("wait", {"seconds": 0.1})
        finally:
            inline_app.config["JOB_INLINE_SYNC"] = False
        assert get_run(run_id)["status"] == "done"
        update_run(run_id, status="queued")
        assert cancel(run_id)
        assert execute(run_id) is None
        assert get_run(run_id)["status"] == "cancelled"


def test_import_job_refuses_a_user_without_the_grant(inline_app: Flask, tmp_path: Path) -> None:
    from app.context import Actor
    from tests.conftest import ADMIN_PASSWORD

    phones = [phone() for _ in range(2)]
    path = customer_file(tmp_path, phones)
    name = f"agent_{uuid.uuid4().hex[:6]}"
    with inline_app.app_context():
        sm = inline_app.appbuilder.sm
        user = sm.add_user(name, "A", "Gent", f"{name}@example.com",
                           sm.find_role("service_agent"), password=ADMIN_PASSWORD)
        actor = Actor(user.id, name, "ui")
        run = wait(enqueue("import", {"entity": "customer", "path": str(path), "lang": "en"},
                           actor), timeout=30)
    assert run["status"] == "failed"
    assert run["error"] == "You may not import customer records."
    assert count_customers(inline_app, phones) == 0
