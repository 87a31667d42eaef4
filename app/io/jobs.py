"""Import and export as background jobs (kinds `import` and `export`), and the export run.

Every export (the list's download, a job, the CLI) goes through `write_export`
or `stream_export_csv`, which count rows (not lines: a remark may hold
newlines) and record one audit `export` entry with the entity, format, the
list's filters/search/order and the row count.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from flask import current_app

from app.audit import record_event
from app.i18n import N_, current_lang
from app.jobs import JobContext, register_kind

LIST_ARG_PREFIXES = ("_flt_", "_oc_", "_od_")
CSV_BATCH = 1000


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


def list_args(args: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Return the list's filters, search and order (`_flt_*`, `q`, `_oc_*`, `_od_*`) of `args`."""
    result = {}
    for key in sorted(args or {}):
        if key == "q" or key.startswith(LIST_ARG_PREFIXES):
            value = args[key]  # type: ignore[index]
            result[key] = [str(v) for v in value] if isinstance(value, list | tuple) \
                else [str(value)]
    return result


def audit_export(entity: str, fmt: str, rows: int, args: Mapping[str, Any] | None,
                 file: str | None = None, complete: bool = True) -> None:
    """Record the audit `export` entry of one export (`complete=False`: the download broke off)."""
    detail: dict[str, Any] = {"format": fmt, "rows": rows, "filters": list_args(args)}
    if file:
        detail["file"] = file
    if not complete:
        detail["complete"] = False
    record_event("export", entity=entity, title=file, detail=detail)


def write_export(entity: str, path: str | Path, fmt: str, args: dict[str, Any] | None = None,
                 lang: str | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
    """Write the export of the list (`args`, or the current request's) to `path`; return rows.

    Not audited here: the caller records the export with `audit_export`.
    """
    from app.io.exporter import headers, iter_rows
    from app.state import state

    lang = lang or current_lang()
    head = headers(state().spec.entity(entity), lang)
    rows = iter_rows(entity, args, lang, for_csv=fmt != "xlsx")
    count = 0
    if fmt == "xlsx":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(state().spec.entity(entity).label.get(lang)[:31])
        sheet.append(head)
        for count, row in enumerate(rows, 1):
            sheet.append(row)
            if progress is not None and count % 10000 == 0:
                progress(count)
        workbook.save(path)
        return count
    with open(path, "wb") as fh:
        for chunk, count in csv_chunks(head, rows):
            fh.write(chunk)
            if progress is not None:
                progress(count)
    return count


def csv_chunks(head: list[str], rows: Iterator[list[Any]]) -> Iterator[tuple[bytes, int]]:
    """Yield the CSV bytes (UTF-8 with BOM, for Excel) batch by batch, with the rows so far."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(head)
    count = 0
    for count, row in enumerate(rows, 1):
        writer.writerow(row)
        if count % CSV_BATCH == 0:
            yield buffer.getvalue().encode("utf-8"), count
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8"), count


def stream_export_csv(entity: str, args: dict[str, Any],
                      lang: str | None = None) -> Iterator[bytes]:
    """Return the CSV download of the current list as a stream; audited when it ends.

    Who may see what is settled now (inside the request); the entry is written
    when the stream ends, with the rows sent (and `complete: false` if the
    client went away before the end).
    """
    from app.io.exporter import headers, iter_rows
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
