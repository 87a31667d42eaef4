"""/backups/list/: the admin's backups page — list, download, verify, create, restore, apply.

Work that takes time (create, verify, restore, schema apply) runs as a job when
the jobs service is installed (`app.jobs.enqueue`), else right in the request.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import LazyString

from app.backup.format import BackupError
from app.backup.notes import keys_notice, note_text
from app.i18n import N_, current_lang, gettext


def _lazy(message: str) -> LazyString:
    return LazyString(lambda: gettext(message))


def run_or_enqueue(kind: str, params: dict[str, Any]) -> str:
    """Start job `kind` (or run it now without the jobs service); return a message for the admin."""
    from app.backup.jobs import JOBS, jobs_available

    if jobs_available():
        from app.jobs import enqueue

        run_id = enqueue(kind, {**params, "lang": current_lang()}, user=g.user)
        return gettext(N_("Job #%(id)d started; follow it on the jobs page."), id=run_id)
    result = JOBS[kind](None, **params)
    return result.get("message") or ""


class BackupsView(BaseView):
    """Backups for admins: every file with its size, tables, rows and verify status."""

    route_base = "/backups"
    default_view = "list"
    class_permission_name = "backup"
    method_permission_name = {
        "list": "read",
        "download": "read",
        "create": "create",
        "verify": "read",
        "restore": "update",
        "apply_schema": "update",
    }

    @expose("/list/")
    @has_access
    def list(self) -> Any:
        from app.backup.store import list_backups
        from app.migrate import plan

        try:
            changes = plan()
        except Exception as exc:  # noqa: BLE001 - show the page even if the diff fails
            changes = [(str(exc).splitlines()[0], False)]
        return self.render_template(
            "backup/list.html", backups=list_backups(), changes=changes, note_text=note_text,
            keys_notice=keys_notice(html=True), title=gettext(N_("Backups")),
        )

    @expose("/download/<name>")
    @has_access
    def download(self, name: str) -> Any:
        from app.backup.store import find_backup

        try:
            path = find_backup(name)
        except BackupError:
            flash(gettext(N_("No such backup.")), "danger")
            return redirect(url_for(".list"))
        return send_file(path, as_attachment=True, download_name=path.name)

    @expose("/create", methods=["POST"])
    @has_access
    def create(self) -> Any:
        note = request.form.get("note", "")[:200]
        self._start("backup", {"note": note})
        return redirect(url_for(".list"))

    @expose("/verify/<name>", methods=["POST"])
    @has_access
    def verify(self, name: str) -> Any:
        from app.backup.store import find_backup

        try:
            self._start("backup_verify", {"path": str(find_backup(name))})
        except BackupError as exc:
            flash(str(exc), "danger")
        return redirect(url_for(".list"))

    @expose("/restore/<name>", methods=["POST"])
    @has_access
    def restore(self, name: str) -> Any:
        from app.backup.store import find_backup

        if request.form.get("confirm") != name:
            flash(gettext(N_("Type the backup's file name to confirm the restore.")), "warning")
            return redirect(url_for(".list"))
        try:
            self._start("backup_restore", {"path": str(find_backup(name)), "force": True})
        except BackupError as exc:
            flash(str(exc), "danger")
        return redirect(url_for(".list"))

    @expose("/apply", methods=["POST"])
    @has_access
    def apply_schema(self) -> Any:
        allow = request.form.get("allow_destructive") == "y"
        self._start("schema_apply", {"allow_destructive": allow})
        return redirect(url_for(".list"))

    def _start(self, kind: str, params: dict[str, Any]) -> None:
        try:
            message = run_or_enqueue(kind, params)
        except BackupError as exc:
            flash(str(exc), "danger")
            return
        if message:
            flash(message, "info")


def register(appbuilder: Any) -> Any:
    """Add the backups page under the admin's Security menu; return the view."""
    return appbuilder.add_view(
        BackupsView,
        "backups",
        label=_lazy(N_("Backups")),
        icon="fa-archive",
        category="Security",
    )
