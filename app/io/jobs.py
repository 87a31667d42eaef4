"""Import and export as background jobs (kinds `import` and `export`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from flask import current_app

from app.i18n import N_
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
               encoding: str | None = None, sheet: str | None = None, **_: Any) -> dict[str, Any]:
    """Run an import as a job; progress in rows (only for users granted `import`)."""
    from app.io.importer import import_file

    require_grant(entity, "import")

    total = estimate_rows(path)
    ctx.progress(0, total, force=True)
    result = import_file(entity, path, dry_run=dry_run, encoding=encoding, sheet=sheet,
                         progress=lambda n, _t: ctx.progress(n, total))
    ctx.progress(result.total, result.total, force=True)
    return {"counts": result.counts(), "error_file": result.error_file}


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


def export_job(ctx: JobContext, entity: str, format: str = "csv",
               args: dict[str, Any] | None = None, lang: str | None = None,
               **_: Any) -> dict[str, Any]:
    """Run an export of the list (its query args) as a job; the file is the result."""
    from app.io.exporter import export_file

    require_grant(entity, "export")

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = export_dir() / f"{entity}-{stamp}-{ctx.run_id}.{format}"
    count = export_file(entity, path, fmt=format, args=args or {}, lang=lang,
                        progress=lambda n, _t: ctx.progress(n, None))
    ctx.progress(count, count, force=True)
    return {"counts": {"rows": count}, "result_file": str(path)}


def register() -> None:
    """Register the `import` and `export` job kinds."""
    register_kind("import", import_job, queue="import", timeout=4 * 3600, retries=1)
    register_kind("export", export_job, queue="default", timeout=4 * 3600, retries=1)
