"""/jobs/list/: every job run with live progress; downloads, re-run and cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, flash, jsonify, redirect, send_file, url_for
from flask_appbuilder import BaseView, expose
from flask_login import current_user

from app.i18n import N_, gettext
from app.jobs.words import count_phrases, kind_label

PAGE = 100


def _sees_all() -> bool:
    admin = current_app.config.get("AUTH_ROLE_ADMIN", "Admin")
    return any(role.name == admin for role in current_user.roles or [])


def _may_use_jobs() -> bool:
    """Signed in with read on job_run, or allowed to import/export anything."""
    if not current_user.is_authenticated:
        return False
    if _sees_all():
        return True
    for role in current_user.roles or []:
        for pv in role.permissions:
            name = pv.permission.name if pv.permission else ""
            if name in ("can_import", "can_export") or (
                name == "can_read" and pv.view_menu and pv.view_menu.name == "job_run"
            ):
                return True
    return False


def job_access(func: Any) -> Any:
    """Let in users who may see jobs; send others to login or away."""
    import functools

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for(current_app.appbuilder.sm.auth_view.endpoint + ".login"))
        if not _may_use_jobs():
            abort(403)
        return func(self, *args, **kwargs)

    return wrapper


def visible_runs(limit: int = PAGE) -> list[dict[str, Any]]:
    """Return the newest runs the current user may see (own, or all for admins)."""
    from app.jobs import decode_run, job_table, mark_dead_runs
    from app.state import state

    mark_dead_runs()
    table = job_table()
    query = sa.select(table).order_by(table.c.id.desc()).limit(limit)
    if not _sees_all():
        query = query.where(table.c.user_id == current_user.id)
    with state().db.engine.connect() as conn:
        return [decode_run(r) for r in conn.execute(query).mappings()]


def _run_or_404(run_id: int) -> dict[str, Any]:
    from app.jobs import get_run

    run = get_run(run_id)
    if run is None or (not _sees_all() and run["user_id"] != current_user.id):
        abort(404)
    return run


def run_json(run: dict[str, Any]) -> dict[str, Any]:
    """Return what the job page shows of a run, as JSON-ready values."""
    def when(value: Any) -> str | None:
        return value.isoformat(sep=" ", timespec="seconds") if value else None

    return {
        "id": run["id"], "kind": run["kind"], "status": run["status"],
        "status_label": gettext(STATUS_LABELS.get(run["status"], run["status"])),
        "progress": run["progress"] or 0, "processed": run["processed"] or 0,
        "total": run["total"], "counts": run["counts"], "user": run["user_name"],
        "kind_label": kind_label(run["kind"]), "count_phrases": count_phrases(run["counts"]),
        "entity_label": _entity_label(run["params"].get("entity")),
        "entity": run["params"].get("entity"), "file": run["params"].get("filename"),
        "error": gettext(run["error"]) if run["error"] and len(run["error"]) < 200
        else run["error"],
        "created_at": when(run["created_at"]), "finished_at": when(run["finished_at"]),
        "result_url": url_for("JobsView.download", run_id=run["id"], which="result")
        if run["result_file"] else None,
        "error_url": url_for("JobsView.download", run_id=run["id"], which="errors")
        if run["error_file"] else None,
    }


def _entity_label(name: str | None) -> str:
    from app.i18n import current_lang
    from app.state import state

    spec = state().spec
    if not name:
        return ""
    return spec.entity(name).label.get(current_lang()) if spec.has_entity(name) else name


STATUS_LABELS = {
    "queued": N_("Queued"), "running": N_("Running"), "done": N_("Done"),
    "failed": N_("Failed"), "cancelled": N_("Cancelled"),
}


class JobsView(BaseView):
    """The job list; JSON for live progress; result and error-report downloads."""

    route_base = "/jobs"
    class_permission_name = "job_run"
    method_permission_name = {"list": "read", "runs": "read", "download": "read",
                              "rerun": "read", "cancel": "read"}
    default_view = "list"

    @expose("/list/")
    @job_access
    def list(self) -> Any:
        runs = [run_json(r) for r in visible_runs()]
        return self.render_template("schemadesk/jobs.html", runs=runs,
                                    title=gettext(N_("Jobs")))

    @expose("/api/runs")
    @job_access
    def runs(self) -> Any:
        """JSON of the visible runs, polled by jobs.js."""
        return jsonify({"runs": [run_json(r) for r in visible_runs()]})

    @expose("/download/<int:run_id>/<which>")
    @job_access
    def download(self, run_id: int, which: str) -> Any:
        run = _run_or_404(run_id)
        path = run["result_file"] if which == "result" else run["error_file"]
        if not path or not Path(path).is_file():
            abort(404)
        root = Path(current_app.config["UPLOAD_DIR"]).resolve()
        if root not in Path(path).resolve().parents:
            abort(404)
        return send_file(path, as_attachment=True, download_name=Path(path).name)

    @expose("/rerun/<int:run_id>", methods=["POST"])
    @job_access
    def rerun(self, run_id: int) -> Any:
        from app.jobs import rerun

        _run_or_404(run_id)
        new_id = rerun(run_id, user=current_user)
        flash(gettext(N_("Started job %(id)s again as job %(new)s."), id=run_id, new=new_id),
              "success")
        return redirect(url_for("JobsView.list"))

    @expose("/cancel/<int:run_id>", methods=["POST"])
    @job_access
    def cancel(self, run_id: int) -> Any:
        from app.jobs import cancel

        _run_or_404(run_id)
        if cancel(run_id):
            flash(gettext(N_("Job %(id)s cancelled."), id=run_id), "info")
        return redirect(url_for("JobsView.list"))


def init_jobs(app: Any, appbuilder: Any) -> None:
    """Register the built-in job kinds and the job list."""
    from app.jobs import kinds

    kinds.register()
    appbuilder.add_view_no_menu(JobsView())
