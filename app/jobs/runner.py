"""The RQ side: the function RQ calls, the app it runs in, and `schemadesk worker`."""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Flask, current_app, has_app_context
from flask.cli import with_appcontext

from app.i18n import N_, gettext

_APP: Flask | None = None
# Apps `refresh_worker_app` built; the one it replaces is released (the caller's own is not).
_REBUILT: set[Flask] = set()


def set_app(app: Flask) -> None:
    """Use `app` for the jobs this process runs (set by `schemadesk worker`)."""
    global _APP
    _APP = app


def worker_app() -> Flask:
    """Return the app jobs run in: the worker's, else one built from the environment.

    A plain `rq worker` has no app; the job then builds one from DATABASE_URL,
    SCHEMA_PATH and the rest of the environment, once per process.
    """
    global _APP
    if _APP is None:
        if has_app_context():
            _APP = current_app._get_current_object()  # type: ignore[attr-defined]
        else:
            from app import create_app

            _APP = create_app()
    return _APP


def refresh_worker_app() -> Flask:
    """Rebuild the worker's app when a newer schema version was applied (checked per job).

    The designer applies versions while workers run; a job must see the same
    entities and fields as the web process that queued it.
    """
    global _APP
    from app.designer.versions import latest_number
    from app.state import state

    app = worker_app()
    with app.app_context():
        st = state()
        number = latest_number(st.db.engine)
        if number is None or number == st.schema_number:
            return app
        config = st.build_config
    from app import create_app
    from app.state import release

    _APP = create_app(config)
    if app in _REBUILT:  # one this worker built: no job runs on it any more
        _REBUILT.discard(app)
        release(app)
    _REBUILT.add(_APP)
    return _APP


def perform(run_id: int) -> Any:
    """RQ entry point: run job `run_id` inside an app context of this worker."""
    from app.jobs import execute
    from app.state import state

    app = refresh_worker_app()
    with app.app_context():
        # RQ forks a work horse per job: never reuse the parent's connections.
        state().db.engine.dispose(close=False)
        from rq import get_current_job

        job = get_current_job()
        final = True
        if job is not None and job.retries_left:
            final = False
        try:
            result = execute(run_id, final=final)
        finally:
            state().db.session.remove()
        return {"run_id": run_id, "counts": (result or {}).get("counts")}


@click.command("worker")
@click.option("--burst", is_flag=True, help="Quit when the queues are empty.")
@click.option("--with-scheduler", is_flag=True, help="Also run RQ's scheduler.")
@click.option("--name", default=None, help="Worker name (default: RQ's).")
@with_appcontext
def worker_command(burst: bool, with_scheduler: bool, name: str | None) -> None:
    """Run an RQ worker on the app's queues (default, import, backup)."""
    from app.jobs import mark_dead_runs, redis_connection, rq_queues

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config.get("REDIS_URL"):
        raise click.ClickException(gettext(N_("Set REDIS_URL to run a worker.")))
    set_app(app)
    mark_dead_runs()
    connection = redis_connection()
    queues = rq_queues(connection)
    click.echo(gettext(N_("Worker %(pid)s on queues %(queues)s."), pid=os.getpid(),
                       queues=", ".join(q.name for q in queues)))
    SchemaWorker(queues, connection=connection, name=name).work(
        burst=burst, with_scheduler=with_scheduler, logging_level="WARNING"
    )


def _schema_worker_class() -> type:
    from rq import Worker

    class _SchemaWorker(Worker):
        """An RQ worker that rebuilds its app before a job when the schema version changed."""

        def execute_job(self, job: Any, queue: Any) -> Any:
            try:
                refresh_worker_app()
            except Exception:  # noqa: BLE001 - the job itself reports a broken app
                import logging

                logging.getLogger(__name__).exception("could not rebuild the worker's app")
            return super().execute_job(job, queue)

    return _SchemaWorker


def SchemaWorker(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - used like the class
    """RQ's Worker that follows the schema version (see `refresh_worker_app`)."""
    return _schema_worker_class()(*args, **kwargs)
