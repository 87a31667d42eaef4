"""BACKUP_SCHEDULE runs backups on RQ's scheduler and BACKUP_KEEP prunes old files."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from app.backup.schedule import ensure_scheduled, next_slot, slot_job_id
from app.backup.store import list_backups, prune
from app.backup.tasks import run_backup
from tests.conftest import CRM


def test_next_slot_follows_cron_in_utc():
    after = dt.datetime(2024, 5, 17, 2, 59, tzinfo=dt.UTC)
    assert next_slot("0 3 * * *", after) == dt.datetime(2024, 5, 17, 3, 0, tzinfo=dt.UTC)
    with pytest.raises(Exception, match="not a cron expression"):
        next_slot("every night")


def test_retention_keeps_the_newest(app_factory):
    app = app_factory(CRM, "sqlite")
    with app.app_context():
        files = [run_backup(note=str(i), verify=False)["file"] for i in range(4)]
        removed = prune(keep=2)
        assert sorted(str(p) for p in removed) == sorted(files[:2])
        assert [b.note for b in list_backups()] == ["3", "2"]


def test_scheduled_backup_runs_on_rq_scheduler(app_factory, redis_url):
    """A slot due now is taken by a worker with the scheduler, backs up, and books the next."""
    from rq import Worker

    from app.jobs import redis_connection, rq_queues
    from app.jobs.runner import set_app

    prefix = f"t{uuid.uuid4().hex[:6]}-"
    app = app_factory(CRM, "sqlite", REDIS_URL=redis_url, JOB_QUEUE_PREFIX=prefix,
                      BACKUP_SCHEDULE="*/5 * * * *")
    app.config["BACKUP_KEEP"] = 1
    with app.app_context():
        slot_now = next_slot("*/5 * * * *")
        assert ensure_scheduled() == slot_job_id(slot_now)  # booked when the app started
        due = ensure_scheduled(after=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
        run_backup(note="old", verify=False)
        set_app(app)
        connection = redis_connection()
        Worker(rq_queues(connection), connection=connection).work(
            burst=True, with_scheduler=True, logging_level="WARNING")
        backups = list_backups()
        assert [b.note for b in backups] == ["scheduled"]  # the old one pruned (BACKUP_KEEP=1)
        assert backups[0].status["ok"]
        assert due != slot_job_id(slot_now)
