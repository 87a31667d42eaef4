"""Import and export as background jobs (kinds `import` and `export`), and the export run.

Every export (the list's download, a job, the CLI) goes through `write_export`
or `stream_export_csv`, which count rows (not lines: a remark may hold
newlines) and record one audit `export` entry with the entity, format, the
list's filters/search/order and the row count.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import current_app

from app.i18n import N_, current_lang
from app.jobs import JobContext, register_kind


def estimate_rows(path: str | Path) -> int | None:
    """Return about how many data rows a file holds (lines, or the sheet's dimension)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
            if magic == b"PK\x03\x04":
                from openpyxl import load_workbook

                workbook = load_workbook(path, read_only=True)
                rows = workbook.worksheets[0].max_row
                workbook.close()
                return max(0, (rows or 1) - 1) or None
            fh.seek(0)
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        return max(0, lines - 1) or None
    except Exception:  # noqa: BLE001 - only an estimate for the progress bar
        return None


def import_job(ctx: JobContext, entity: str, path: str, dry_run: bool = False,
               encoding: str | None = None, sheet: str | None = None, preview: bool = False,
               **_: Any) -> dict[str, Any]:
    """Run an import as a job; progress in rows (only for users granted `import`).

    `preview` (with `dry_run`): keep the result for the import page, which waits on it.
    """
    from app.io.importer import import_file

    require_grant(entity, "import")

    total = estimate_rows(path)
    ctx.progress(0, total, force=True)
    result = import_file(entity, path, dry_run=dry_run, encoding=encoding, sheet=sheet,
                         progress=lambda n, _t: ctx.progress(n, total))
    if preview and dry_run:
        save_preview(result, path)
    ctx.progress(result.total, result.total, force=True)
    return {"counts": result.counts(), "error_file": result.error_file}


def preview_path(upload: str | Path) -> Path:
    """Where the dry run of an uploaded file is kept for the import page (beside the file)."""
    upload = Path(upload)
    return upload.with_name(upload.name + ".preview.json")


def save_preview(result: Any, upload: str | Path) -> None:
    """Keep a dry run's result (an ImportResult) as JSON beside the uploaded file."""
    preview_path(upload).write_text(
        json.dumps(dataclasses.asdict(result), default=str, ensure_ascii=False), "utf-8")


def load_preview(upload: str | Path) -> Any:
    """The ImportResult kept by `save_preview`, or None."""
    from app.io.importer import ImportResult, RowProblem

    try:
        data = json.loads(preview_path(upload).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    data["problems"] = [RowProblem(**p) for p in data.get("problems", [])]
    return ImportResult(**data)


class NotGranted(PermissionError):
    """The job's user may not take this action on the entity."""

    def __init__(self, entity: str, action: str):
        super().__init__(N_("You may not %(action)s %(entity)s records."))
        self.message = N_("You may not %(action)s %(entity)s records.")
        self.params = {"action": action, "entity": entity}


def require_grant(entity: str, action: str) -> None:
    """Refuse a job run for a user whose roles lack `action` on `entity` (CLI/system pass)."""
    from app.records.scope import current_user_record, is_admin

    user = current_user_record()
    if user is None or is_admin(user):
        return
    for role in user.roles or []:
        for pv in role.permissions:
            if pv.permission and pv.view_menu and pv.permission.name == f"can_{action}" \
                    and pv.view_menu.name == entity:
                return
    raise NotGranted(entity, action)


def export_dir() -> Path:
    path = Path(current_app.config["UPLOAD_DIR"]) / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def stream_export_csv(entity: str, args: dict[str, Any],
                      lang: str | None = None) -> Iterator[bytes]:
    """Return the CSV download of the current list as a stream; audited when it ends.

    Who may see what is settled now (inside the request); the entry is written
    when the stream ends, with the rows sent (and `complete: false` if the
    client went away before the end).
    """
    from app.io.exporter import audit_export, csv_chunks, headers, iter_rows
    from app.state import state

    lang = lang or current_lang()
    head = headers(state().spec.entity(entity), lang)
    rows = iter_rows(entity, None, lang, for_csv=True)

    def stream() -> Iterator[bytes]:
        sent, complete = 0, False
        try:
            for chunk, count in csv_chunks(head, rows):
                sent = count
                yield chunk
            complete = True
        finally:
            audit_export(entity, "csv", sent, args, complete=complete)

    return stream()


def export_job(ctx: JobContext, entity: str, format: str = "csv",
               args: dict[str, Any] | None = None, lang: str | None = None,
               **_: Any) -> dict[str, Any]:
    """Run an export of the list (its query args) as a job; the file is the result."""
    from app.io.exporter import audit_export, write_export

    require_grant(entity, "export")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = export_dir() / f"{entity}-{stamp}-{ctx.run_id}.{format}"
    count = write_export(entity, path, format, args or {}, lang,
                         progress=lambda n: ctx.progress(n, None))
    audit_export(entity, format, count, args, path.name)
    ctx.progress(count, count, force=True)
    return {"counts": {"rows": count}, "result_file": str(path)}


def register() -> None:
    """Register the `import` and `export` job kinds."""
    register_kind("import", import_job, queue="import", timeout=4 * 3600, retries=1)
    register_kind("export", export_job, queue="default", timeout=4 * 3600, retries=1)
