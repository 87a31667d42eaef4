"""BACKUP_SCHEDULE on RQ's scheduler: one job per cron slot, each scheduling the next.

`ensure_scheduled()` (run when an app starts with REDIS_URL and
BACKUP_SCHEDULE, e.g. `schemadesk worker --with-scheduler`) puts the next
slot's tick on RQ's scheduled registry under a job id made of the slot's time,
so any number of processes can call it and the slot still runs once. A tick
starts a `backup` job (which verifies and prunes to BACKUP_KEEP) and schedules
the following slot.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from croniter import croniter
from flask import current_app

from app.backup.format import BackupError
from app.i18n import N_, gettext

QUEUE = "backup"


def next_slot(schedule: str, after: dt.datetime | None = None) -> dt.datetime:
    """The next time `schedule` (cron syntax, UTC) fires after `after` (default now)."""
    if not croniter.is_valid(schedule):
        raise BackupError(gettext(N_("BACKUP_SCHEDULE '%(value)s' is not a cron expression "
                                     "(e.g. '0 3 * * *' for 03:00 UTC daily)."), value=schedule))
    after = after or dt.datetime.now(dt.UTC)
    return croniter(schedule, after).get_next(dt.datetime)


def slot_job_id(slot: dt.datetime) -> str:
    """The RQ job id of a slot: one per slot and per console (its queue prefix).

    Consoles that share a Redis under different JOB_QUEUE_PREFIX values must not
    take each other's slot for their own (it would never run for the second).
    """
    from app.jobs import _queue_name

    return f"{_queue_name('schemadesk-backup')}-{slot.strftime('%Y%m%dT%H%M')}"


def ensure_scheduled(after: dt.datetime | None = None) -> str | None:
    """Schedule the next backup slot on RQ unless it already is; return its job id."""
    schedule = current_app.config.get("BACKUP_SCHEDULE")
    if not schedule or not current_app.config.get("REDIS_URL"):
        return None
    from rq import Queue
    from rq.job import Job

    from app.jobs import _queue_name, redis_connection

    slot = next_slot(schedule, after)
    job_id = slot_job_id(slot)
    connection = redis_connection()
    if Job.exists(job_id, connection=connection):
        return job_id
    queue = Queue(_queue_name(QUEUE), connection=connection)
    queue.enqueue_at(slot, "app.backup.schedule.tick", slot.isoformat(), job_id=job_id,
                     result_ttl=7 * 86400, failure_ttl=7 * 86400)
    return job_id


def tick(slot: str) -> dict[str, Any]:
    """RQ entry point at a slot: start the backup job, schedule the next slot."""
    from app.jobs import enqueue
    from app.jobs.runner import worker_app

    app = worker_app()
    with app.app_context():
        run_id = enqueue("backup", {"note": "scheduled",
                                    "keep": int(app.config.get("BACKUP_KEEP", 14))})
        next_id = ensure_scheduled(dt.datetime.fromisoformat(slot))
    return {"run_id": run_id, "next": next_id}
