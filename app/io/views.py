"""/<entity>/import (upload -> preview -> confirm) and /<entity>/export, per entity."""

from __future__ import annotations

import io
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    request,
    send_file,
    send_from_directory,
    session,
    stream_with_context,
    url_for,
)
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access

from app.i18n import N_, current_lang, gettext
from app.schema.spec import ACTIONS, EntitySpec
from app.state import state

ENCODINGS = ("", "utf-8", "gb18030", "big5", "utf-16", "latin-1")
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
SESSION_KEY = "sd_import_files"


def upload_dir(kind: str) -> Path:
    path = Path(current_app.config["UPLOAD_DIR"]) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def _remember(name: str) -> None:
    names = list(session.get(SESSION_KEY, []))[-20:]
    names.append(name)
    session[SESSION_KEY] = names


def _owned(name: str) -> bool:
    return bool(SAFE_NAME.match(name)) and name in session.get(SESSION_KEY, [])


PREVIEW_SYNC_BYTES = 1024 * 1024  # about 10,000 rows: a preview of this answers in a second


def _preview_as_job(path: Path) -> bool:
    """Whether a file is large enough that its preview must run as a job, not in the request."""
    from app.io.reader import unpacked_size

    limit = int(current_app.config.get("IMPORT_PREVIEW_SYNC_BYTES") or PREVIEW_SYNC_BYTES)
    return unpacked_size(path) > limit


def _export_args() -> dict[str, list[str]]:
    return {k: request.args.getlist(k) for k in request.args if k not in ("format", "async")}


class EntityIOView(BaseView):
    """Import and export screens of one entity (`entity` set on each subclass)."""

    entity: EntitySpec
    default_view = "import_file"

    @expose("/import", methods=["GET", "POST"])
    @has_access
    def import_file(self) -> Any:
        """Upload a file; show what the import would do (a dry run) before it does it.

        A large file is checked by a job instead (no request holds for long): the
        page then waits at `?token=...&run=...`, refreshing until the preview is there.
        """
        from app.io.importer import import_file
        from app.io.reader import FileError

        entity = self.entity
        if request.method == "GET":
            if request.args.get("token") and request.args.get("run"):
                return self._preview_of_job()
            return self._upload_form()
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(gettext(N_("Choose a CSV or XLSX file.")), "warning")
            return redirect(request.url)
        suffix = Path(upload.filename).suffix.lower()
        if suffix not in (".csv", ".txt", ".xlsx", ".xlsm", ".tsv"):
            flash(gettext(N_("Only CSV and XLSX files can be imported.")), "danger")
            return redirect(request.url)
        name = f"{entity.name}-{uuid.uuid4().hex}{suffix}"
        path = upload_dir("imports") / name
        upload.save(path)
        _remember(name)
        encoding = request.form.get("encoding") or None
        if encoding not in ENCODINGS:
            encoding = None
        sheet = (request.form.get("sheet") or "").strip() or None
        try:
            if _preview_as_job(path):
                return self._start_preview_job(path, encoding, sheet, upload.filename)
            result = import_file(entity.name, path, dry_run=True, encoding=encoding, sheet=sheet)
        except FileError as exc:
            flash(gettext(exc.message, **exc.params), "danger")
            return redirect(request.url)
        return self._preview(result, name, encoding, sheet, upload.filename)

    def _upload_form(self, **headers: str) -> Any:
        entity = self.entity
        page = self.render_template("schemadesk/import.html", entity=entity,
                                    label=entity.label.get(current_lang()),
                                    encodings=ENCODINGS, result=None)
        return page, 200, headers

    def _preview(self, result: Any, token: str, encoding: str | None, sheet: str | None,
                 filename: str) -> Any:
        """The preview page of a dry run: counts, columns, rejected rows, the confirm button."""
        entity = self.entity
        if result.error_file:
            _remember(Path(result.error_file).name)
        return self.render_template(
            "schemadesk/import.html", entity=entity, label=entity.label.get(current_lang()),
            encodings=ENCODINGS, result=result, token=token, encoding=encoding or "",
            sheet=sheet or "", filename=filename,
            report=Path(result.error_file).name if result.error_file else None,
            field_label=lambda n: entity.field(n).label.get(current_lang()),
        )

    def _start_preview_job(self, path: Path, encoding: str | None, sheet: str | None,
                           filename: str) -> Any:
        """Check a large file's limits now, dry-run it as a job, and wait on its page."""
        from app.io.reader import Limits, check_xlsx, is_xlsx
        from app.jobs import enqueue

        if is_xlsx(path):
            check_xlsx(path, Limits.from_config())  # a zip bomb is refused at once
        run_id = enqueue("import", {
            "entity": self.entity.name, "path": str(path), "dry_run": True,
            "preview": True, "encoding": encoding, "sheet": sheet, "lang": current_lang(),
            "filename": filename,
        })
        return redirect(url_for(".import_file", token=path.name, run=run_id,
                                encoding=encoding or "", sheet=sheet or "", filename=filename))

    def _preview_of_job(self) -> Any:
        """The page a large file's preview waits on: refreshes until its job is done."""
        from app.io.jobs import load_preview
        from app.jobs import get_run

        token = request.args.get("token", "")
        run = get_run(int(request.args.get("run", "0") or 0)) \
            if request.args.get("run", "").isdigit() else None
        path = upload_dir("imports") / token
        if not _owned(token) or run is None or run["params"].get("path") != str(path):
            abort(404)
        if run["status"] in ("queued", "running"):
            flash(gettext(N_("The file is large, so it is checked in the background (job "
                             "%(id)s, %(progress)s%%). This page refreshes by itself until the "
                             "preview is ready."), id=run["id"], progress=run["progress"] or 0),
                  "info")
            return self._upload_form(Refresh="2")
        result = load_preview(path) if run["status"] == "done" else None
        if result is None:
            flash(run.get("error") or gettext(N_("The check of the file did not finish; upload "
                                                 "it again.")), "danger")
            return self._upload_form()
        return self._preview(result, token, request.args.get("encoding") or None,
                             request.args.get("sheet") or None,
                             request.args.get("filename") or token)

    @expose("/import/confirm", methods=["POST"])
    @has_access
    def import_confirm(self) -> Any:
        """Start the import of a previewed file as a job; go to the job list."""
        from app.jobs import enqueue

        token = request.form.get("token", "")
        if not _owned(token):
            abort(404)
        encoding = request.form.get("encoding") or None
        run_id = enqueue("import", {
            "entity": self.entity.name, "path": str(upload_dir("imports") / token),
            "dry_run": False, "encoding": encoding if encoding in ENCODINGS else None,
            "sheet": request.form.get("sheet") or None, "lang": current_lang(),
            "filename": request.form.get("filename") or token,
        })
        flash(gettext(N_("Import started (job %(id)s)."), id=run_id), "success")
        return redirect(url_for("JobsView.list"))

    @expose("/import/report/<name>")
    @has_access
    def import_report(self, name: str) -> Any:
        """Download the rejected rows (original cells, line and reason) of a preview."""
        if not _owned(name):
            abort(404)
        return send_from_directory(upload_dir("reports"), name, as_attachment=True)

    @expose("/import/template")
    @has_access
    def import_template(self) -> Any:
        """Download the import template: headers, an example row, the accepted choices."""
        from app.io.exporter import write_template

        fmt = "csv" if request.args.get("format") == "csv" else "xlsx"
        out = io.BytesIO()
        write_template(self.entity.name, out, fmt=fmt)
        out.seek(0)
        label = self.entity.label.get(current_lang())
        return send_file(out, as_attachment=True, download_name=f"{label}-template.{fmt}",
                         mimetype="text/csv" if fmt == "csv" else XLSX_MIME)

    @expose("/export")
    @has_access
    def export(self) -> Any:
        """Export the list as shown (filters, search `q`, order); large ones as a job."""
        from app.io.exporter import audit_export, count_rows, write_export
        from app.io.jobs import stream_export_csv

        entity = self.entity
        fmt = "xlsx" if request.args.get("format") == "xlsx" else "csv"
        limit = int(current_app.config.get("EXPORT_SYNC_ROWS") or 20000)
        if request.args.get("async") or count_rows(entity.name) > limit:
            from app.jobs import enqueue

            run_id = enqueue("export", {"entity": entity.name, "format": fmt,
                                        "args": _export_args(), "lang": current_lang()})
            flash(gettext(N_("The export runs in the background (job %(id)s); download it "
                             "from the job list when it is done."), id=run_id), "info")
            return redirect(url_for("JobsView.list"))
        filename = f"{entity.label.get(current_lang())}.{fmt}"
        if fmt == "csv":
            response = Response(
                stream_with_context(stream_export_csv(entity.name, _export_args())),
                mimetype="text/csv; charset=utf-8")
            response.headers["Content-Disposition"] = _attachment(filename)
            return response
        handle = tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False)  # noqa: SIM115
        handle.close()
        rows = write_export(entity.name, handle.name, "xlsx")
        audit_export(entity.name, "xlsx", rows, _export_args())
        response = send_file(handle.name, as_attachment=True, download_name=filename,
                             mimetype=XLSX_MIME)
        response.call_on_close(lambda: Path(handle.name).unlink(missing_ok=True))
        return response


XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _attachment(filename: str) -> str:
    from urllib.parse import quote

    return f"attachment; filename=\"export.{filename.rsplit('.', 1)[-1]}\"; " \
           f"filename*=UTF-8''{quote(filename)}"


def make_io_view(entity: EntitySpec) -> type[EntityIOView]:
    """Generate the import/export view class of one entity."""
    return type(f"{entity.class_name}ViewIO", (EntityIOView,), {
        "entity": entity,
        "route_base": f"/{entity.name}",
        "class_permission_name": entity.name,
        # The entity's ModelView shares this view menu: declare every action so
        # FAB's permission sync never prunes the ModelView's (or our) permissions.
        "base_permissions": [f"can_{action}" for action in ACTIONS],
        "method_permission_name": {
            "import_file": "import",
            "import_confirm": "import",
            "import_report": "import",
            "import_template": "import",
            "export": "export",
        },
    })


def io_links() -> dict[str, Any] | None:
    """Return the import/export links for the list page being rendered (or None)."""
    blueprint = request.blueprint or ""
    st = state()
    for entity in st.spec.entities:
        if blueprint == f"{entity.class_name}View":
            sm = current_app.appbuilder.sm
            query = request.query_string.decode()
            export = url_for(f"{entity.class_name}ViewIO.export")
            return {
                "can_import": sm.has_access("can_import", entity.name),
                "can_export": sm.has_access("can_export", entity.name),
                "import": url_for(f"{entity.class_name}ViewIO.import_file"),
                "csv": f"{export}?{query}&format=csv" if query else f"{export}?format=csv",
                "xlsx": f"{export}?{query}&format=xlsx" if query else f"{export}?format=xlsx",
            }
    return None


def register_views(appbuilder: Any) -> None:
    """Register one import/export view per entity, and the list-page link helper."""
    for entity in state().spec.entities:
        appbuilder.add_view_no_menu(make_io_view(entity))
    current_app.jinja_env.globals["sd_io_links"] = io_links
