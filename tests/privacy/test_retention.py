"""Retention rules: previewed, run once per slot under two scheduler processes, reported.

The CRM's rule anonymises customers lost and untouched for 3 years. Two
`schemadesk retention run` processes started together for the same slot: one
runs it, the other finds the slot taken; the destruction report names exactly
the rows that changed, with the hashes of their audit entries.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.privacy import retention
from app.records import records
from app.state import state
from tests.conftest import CRM

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 12, 1)
SLOT = "2026-12-01T02:30"
OLD = dt.datetime(2022, 1, 1, 8, 0)


def seed(kinds: list[tuple[str, bool]]) -> list[int]:
    """Customers with a status and an old (True) or recent `updated_at`; return their ids."""
    service = records("customer", None)
    ids = [service.create({"name": f"R{i}-{status}", "kind": "person", "status": status,
                           "id_no": f"RID{i:06d}"}).id for i, (status, _) in enumerate(kinds)]
    table = state().models.table("customer")
    with state().db.engine.begin() as conn:
        for record_id, (_, old) in zip(ids, kinds, strict=True):
            if old:
                conn.execute(sa.update(table).where(table.c.id == record_id)
                             .values(updated_at=OLD))
    return ids


def scheduler_env(app) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               SCHEMA_PATH=app.config["SCHEMA_PATH"], INSTANCE_PATH=app.config["INSTANCE_PATH"],
               RATELIMIT_ENABLED="0", SCHEMADESK_LANG="en")
    env.pop("REDIS_URL", None)
    return env


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_rule_runs_once_under_two_schedulers_and_report_matches(app_factory, backend):
    app = app_factory(CRM, backend)
    with app.app_context():
        ids = seed([("lost", True), ("lost", True), ("active", True), ("lost", False),
                    ("lost", True)])
        due = [ids[0], ids[1], ids[4]]
        [item] = [i for i in retention.preview(DAY) if i["entity"] == "customer"]
        assert (item["count"], item["action"]) == (3, "anonymise")

    command = [sys.executable, "-c", "from app.cli import main; main()", "retention", "run",
               "--slot", SLOT, "--on", DAY.isoformat()]
    procs = [subprocess.Popen(command, cwd=ROOT, env=scheduler_env(app), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sum("3 record(s) changed" in o for o in outputs) == 1, outputs
    assert sum("already ran" in o for o in outputs) == 1, outputs

    with app.app_context():
        state().db.session.remove()
        st = state()
        runs, log = st.models.system["retention_run"], st.models.system["audit_log"]
        with st.db.engine.connect() as conn:
            [run] = conn.execute(sa.select(runs).where(runs.c.slot == SLOT)).mappings().all()
            entries = conn.execute(sa.select(log.c.hash, log.c.detail).where(
                log.c.action == "retention")).all()
        assert run["status"] == "done" and run["changed"] == 3
        assert [e.hash for e in entries] == [run["audit_hash"]]
        table = st.models.table("customer")
        with st.db.engine.connect() as conn:
            changed = set(conn.execute(sa.select(table.c.id).where(
                table.c.name.like("已销毁 #%"))).scalars())
        assert changed == set(due)
        header, *rows = retention.report_rows(run["id"])
        assert header[:1] == ["run"]
        assert {int(r[6]) for r in rows} == changed
        assert {r[8] for r in rows} == {f"已销毁 #{i}" for i in due}
        with st.db.engine.connect() as conn:
            hashes = set(conn.execute(sa.select(log.c.hash).where(
                log.c.action == "erase", log.c.entity == "customer")).scalars())
        assert {r[9] for r in rows} <= hashes and all(r[9] for r in rows)
        assert records("customer", None).get(ids[0]).id_no is None
        assert records("customer", None).get(ids[3]).id_no == "RID000003"  # recent: kept
        # A second run of the same slot changes nothing; a later slot finds nothing due.
        assert retention.run_rule(st.spec.entity("customer"), SLOT, DAY)["skipped"]
        later = retention.run_rule(st.spec.entity("customer"), "2026-12-02T02:30",
                                   DAY + dt.timedelta(days=1))
        assert later["changed"] == 0 and not later["skipped"]
        from app.audit.service import run_verify

        assert run_verify(record=False).ok


def test_scheduled_run_waits_for_the_admin_to_confirm_the_preview(app_factory):
    app = app_factory(CRM, "sqlite")
    with app.app_context():
        ids = seed([("lost", True)])
        customer = state().spec.entity("customer")
        [skipped] = retention.run_all("2026-12-01T02:30", DAY, scheduled=True)
        assert skipped["unconfirmed"] and records("customer", None).get(ids[0]).id_no
        assert not retention.confirmed(customer)
        retention.confirm(customer, "admin")
        assert retention.confirmed(customer)
        [done] = retention.run_all("2026-12-01T02:30", DAY, scheduled=True)
        assert done["changed"] == 1
        assert [r["slot"] for r in retention.runs()] == ["2026-12-01T02:30"]


def test_scheduled_slot_runs_on_rq_scheduler_once(app_factory, redis_url):
    """RETENTION_SCHEDULE books each slot once on RQ; a worker with the scheduler runs it."""
    import uuid

    from rq import Worker

    from app.jobs import redis_connection, rq_queues
    from app.jobs.runner import set_app

    prefix = f"t{uuid.uuid4().hex[:6]}-"
    app = app_factory(CRM, "sqlite", REDIS_URL=redis_url, JOB_QUEUE_PREFIX=prefix,
                      RETENTION_SCHEDULE="*/5 * * * *")
    with app.app_context():
        ids = seed([("lost", True), ("active", True)])
        retention.confirm(state().spec.entity("customer"), "admin")
        booked = retention.ensure_scheduled()
        assert booked == retention.slot_job_id(retention.next_run())  # booked at start too
        assert retention.ensure_scheduled() == booked  # idempotent: one job per slot
        due = retention.ensure_scheduled(after=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
        assert due != booked
        set_app(app)
        connection = redis_connection()
        Worker(rq_queues(connection), connection=connection).work(
            burst=True, with_scheduler=True, logging_level="WARNING")
        state().db.session.remove()
        assert [r["changed"] for r in retention.runs()] == [1]
        assert records("customer", None).get(ids[0]).name == f"已销毁 #{ids[0]}"
        assert records("customer", None).get(ids[1]).name != f"已销毁 #{ids[1]}"
