"""Background jobs: one interface, two runners, every run recorded in `job_run`.

`enqueue(kind, params, user)` records a run and hands it to RQ (when
`REDIS_URL` is set; queues `default`, `import`, `backup`, run by `schemadesk
worker`) or to a thread of this process (the embedded default). Whichever runs
it calls `execute(run_id)`, which marks the run running, heartbeats, reports
progress, and records the outcome. A run whose heartbeat stops (its worker was
killed) is marked failed by `mark_dead_runs()` and can be re-run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from app.context import Actor, acting_as
from app.i18n import N_
from app.models import utcnow

QUEUES = ("default", "import", "backup")
STATUSES = ("queued", "running", "done", "failed", "cancelled")
HEARTBEAT_SECONDS = 5


class JobCancelled(Exception):
    """Raised inside a job when its run was cancelled."""


@dataclass(frozen=True)
class JobKind:
    """A kind of job: the function that runs it, its queue, timeout and retries."""

    name: str
    func: Callable[..., dict[str, Any] | None]
    queue: str = "default"
    timeout: int = 3600
    retries: int = 0


REGISTRY: dict[str, JobKind] = {}


def register_kind(name: str, func: Callable[..., dict[str, Any] | None], queue: str = "default",
                  timeout: int = 3600, retries: int = 0) -> JobKind:
    """Add a job kind; `func(ctx, **params)` returns a dict of counts/result (or None)."""
    kind = JobKind(name, func, queue, timeout, retries)
    REGISTRY[name] = kind
    return kind


def job_table() -> sa.Table:
    from app.state import state

    return state().models.system["job_run"]


def _engine() -> sa.Engine:
    from app.state import state

    return state().db.engine


def _queue_name(name: str) -> str:
    prefix = current_app.config.get("JOB_QUEUE_PREFIX") or os.environ.get("JOB_QUEUE_PREFIX")
    return f"{prefix or ''}{name}"


def redis_connection() -> Any:
    from redis import Redis

    return Redis.from_url(current_app.config["REDIS_URL"])


def rq_queues(connection: Any = None) -> list[Any]:
    """Return the app's RQ queues (default, import, backup), prefixed if configured."""
    from rq import Queue

    connection = connection or redis_connection()
    return [Queue(_queue_name(name), connection=connection) for name in QUEUES]


def update_run(run_id: int, **values: Any) -> None:
    """Write `values` to a job run in a transaction of its own (visible at once)."""
    table = job_table()
    with _engine().begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == run_id).values(**values))


def get_run(run_id: int) -> dict[str, Any] | None:
    """Return a job run as a dict (params and counts decoded), or None."""
    table = job_table()
    with _engine().connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == run_id)).mappings().first()
    return decode_run(row) if row is not None else None


def decode_run(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["params"] = json.loads(data["params"] or "{}")
    data["counts"] = json.loads(data["counts"] or "{}")
    return data


def enqueue(kind: str, params: dict[str, Any], user: Any = None) -> int:
    """Record and start a job of `kind`; return the job_run id."""
    if kind not in REGISTRY:
        raise KeyError(f"no job kind {kind!r}")
    job_kind = REGISTRY[kind]
    user_id, user_name = _user_of(user)
    table = job_table()
    use_rq = bool(current_app.config.get("REDIS_URL"))
    with _engine().begin() as conn:
        run_id = conn.execute(
            sa.insert(table).values(
                kind=kind, queue=job_kind.queue, params=json.dumps(params, default=str),
                user_id=user_id, user_name=user_name, status="queued", progress=0,
                processed=0, attempts=0, created_at=utcnow(),
            )
        ).inserted_primary_key[0]
    if use_rq:
        from rq import Queue, Retry

        queue = Queue(_queue_name(job_kind.queue), connection=redis_connection())
        job = queue.enqueue(
            "app.jobs.runner.perform",
            run_id,
            job_id=f"schemadesk-run-{run_id}-{utcnow().strftime('%H%M%S%f')}",
            job_timeout=job_kind.timeout,
            retry=Retry(max=job_kind.retries) if job_kind.retries else None,
            result_ttl=86400,
            failure_ttl=7 * 86400,
        )
        update_run(run_id, rq_job_id=job.id)
    else:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if app.config.get("JOB_INLINE_SYNC"):
            run_inline(app, run_id)
        else:
            threading.Thread(target=run_inline, args=(app, run_id), daemon=True,
                             name=f"schemadesk-job-{run_id}").start()
    return int(run_id)


def _user_of(user: Any) -> tuple[int | None, str]:
    if user is None:
        from app.context import current_actor

        actor = current_actor()
        return actor.user_id, actor.name
    if isinstance(user, Actor):
        return user.user_id, user.name
    return getattr(user, "id", None), getattr(user, "username", str(user))


def run_inline(app: Flask, run_id: int) -> None:
    """Run a job in this process (thread runner), with its retries."""
    with app.app_context():
        kind = REGISTRY.get((get_run(run_id) or {}).get("kind", ""))
        attempts = 1 + (kind.retries if kind else 0)
        for attempt in range(attempts):
            try:
                execute(run_id, final=attempt == attempts - 1)
                return
            except Exception:  # noqa: BLE001 - recorded in the run; retried or final
                continue


class JobContext:
    """What a running job sees: its run id, params, and a progress reporter."""

    def __init__(self, run_id: int, params: dict[str, Any]):
        self.run_id = run_id
        self.params = params
        self.total: int | None = None
        self._last = 0.0

    def progress(self, processed: int, total: int | None = None, message: str | None = None,
                 force: bool = False) -> None:
        """Record progress (at most a few writes a second); raise JobCancelled if cancelled."""
        import time

        if total is not None:
            self.total = total
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        values: dict[str, Any] = {"processed": processed, "heartbeat_at": utcnow()}
        if self.total:
            values["total"] = self.total
            values["progress"] = min(99, int(processed * 100 / self.total))
        if message is not None:
            values["message"] = message
        update_run(self.run_id, **values)
        run = get_run(self.run_id)
        if run is not None and run["status"] == "cancelled":
            raise JobCancelled()


def _heartbeat(run_id: int, stop: threading.Event, app: Flask) -> None:
    interval = float(app.config.get("JOB_HEARTBEAT_SECONDS") or HEARTBEAT_SECONDS)
    with app.app_context():
        while not stop.wait(interval):
            try:
                update_run(run_id, heartbeat_at=utcnow())
            except Exception:  # noqa: BLE001 - a missed beat is not fatal
                pass


def execute(run_id: int, final: bool = True) -> dict[str, Any] | None:
    """Run job `run_id` in the current app context; record the outcome; return the result.

    On failure the error is recorded and re-raised (so RQ can retry); the run is
    only marked failed when no attempt is left (`final`).
    """
    run = get_run(run_id)
    if run is None or run["status"] in ("cancelled", "done"):
        return None
    kind = REGISTRY[run["kind"]]
    update_run(run_id, status="running", started_at=utcnow(), heartbeat_at=utcnow(),
               attempts=(run["attempts"] or 0) + 1, worker=f"{socket.gethostname()}:{os.getpid()}",
               error=None, finished_at=None)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(run_id, stop, app), daemon=True)
    beat.start()
    actor = Actor(run["user_id"], run["user_name"] or "job", "job")
    lang = run["params"].get("lang")
    try:
        from flask_babel import force_locale

        with acting_as(actor), force_locale("zh_CN" if lang == "zh" else "en"):
            result = kind.func(JobContext(run_id, run["params"]), **run["params"]) or {}
    except JobCancelled:
        stop.set()
        update_run(run_id, finished_at=utcnow(), message=N_("Cancelled"))
        return None
    except Exception as exc:
        stop.set()
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        message = getattr(exc, "message", None)
        if message is not None and getattr(exc, "params", None) is not None:
            from app.i18n import gettext

            with force_locale("zh_CN" if lang == "zh" else "en"):
                text = gettext(message, **exc.params)
        if final:
            update_run(run_id, status="failed", finished_at=utcnow(), error=text[:4000])
        else:
            update_run(run_id, status="queued", error=text[:4000])
        raise
    finally:
        stop.set()
    update_run(
        run_id, status="done", progress=100, finished_at=utcnow(),
        counts=json.dumps(result.get("counts", {})),
        result_file=result.get("result_file"), error_file=result.get("error_file"),
        message=result.get("message"),
    )
    return result


def mark_dead_runs() -> int:
    """Mark failed the runs whose worker died; return how many.

    A running job heartbeats every few seconds; when the beat is older than
    `JOB_DEAD_AFTER` seconds (default 60) its process is gone. With RQ, a queued
    run whose RQ job vanished (Redis flushed) or landed in RQ's failed registry
    (the work horse was killed, the job timed out) is failed too.
    """
    table = job_table()
    dead_after = int(current_app.config.get("JOB_DEAD_AFTER") or 60)
    limit = utcnow() - dt.timedelta(seconds=dead_after)
    message = N_("The worker running this job stopped; run it again.")
    marked = 0
    with _engine().begin() as conn:
        marked += conn.execute(
            sa.update(table)
            .where(table.c.status == "running")
            .where(sa.func.coalesce(table.c.heartbeat_at, table.c.started_at) < limit)
            .values(status="failed", finished_at=utcnow(), error=message)
        ).rowcount
    if current_app.config.get("REDIS_URL"):
        marked += _mark_lost_rq_runs(limit)
    return marked


def _mark_lost_rq_runs(limit: dt.datetime) -> int:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    table = job_table()
    try:
        connection = redis_connection()
        for queue in rq_queues(connection):
            # moves jobs of workers that vanished into the failed registry
            queue.started_job_registry.cleanup()
    except Exception:  # noqa: BLE001 - Redis down: the heartbeat check still holds
        return 0
    marked = 0
    with _engine().connect() as conn:
        rows = conn.execute(
            sa.select(table.c.id, table.c.rq_job_id)
            .where(table.c.status == "queued")
            .where(table.c.rq_job_id.is_not(None))
            .where(table.c.created_at < limit)
        ).all()
    for run_id, job_id in rows:
        try:
            job = Job.fetch(job_id, connection=connection)
            lost = job.get_status() in ("failed", "stopped", "canceled")
        except NoSuchJobError:
            lost = True
        if lost:
            update_run(run_id, status="failed", finished_at=utcnow(),
                       error=N_("The job was lost from the queue; run it again."))
            marked += 1
    return marked


def rerun(run_id: int, user: Any = None) -> int:
    """Start a new run with the same kind and parameters; return its id."""
    run = get_run(run_id)
    if run is None:
        raise KeyError(run_id)
    return enqueue(run["kind"], run["params"], user or Actor(run["user_id"],
                                                              run["user_name"] or "", "job"))


def cancel(run_id: int) -> bool:
    """Cancel a queued or running run (a running one stops at its next progress report)."""
    table = job_table()
    with _engine().begin() as conn:
        done = conn.execute(
            sa.update(table).where(table.c.id == run_id)
            .where(table.c.status.in_(("queued", "running")))
            .values(status="cancelled", finished_at=utcnow())
        ).rowcount
    run = get_run(run_id)
    if done and run and run.get("rq_job_id") and current_app.config.get("REDIS_URL"):
        try:
            from rq.job import Job

            Job.fetch(run["rq_job_id"], connection=redis_connection()).cancel()
        except Exception:  # noqa: BLE001 - already gone or started: the flag still holds
            pass
    return bool(done)


def wait(run_id: int, timeout: float = 60) -> dict[str, Any]:
    """Block until the run is finished (done/failed/cancelled); return it."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        run = get_run(run_id)
        if run and run["status"] in ("done", "failed", "cancelled"):
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"job run {run_id} still {run and run['status']}")
        time.sleep(0.2)


__all__ = ["JobContext", "JobKind", "REGISTRY", "cancel", "enqueue", "execute", "get_run",
           "mark_dead_runs", "register_kind", "rerun", "wait"]
