"""Backup work as job kinds (`app.jobs.register_kind`): backup, verify, restore, schema apply.

Each takes the job context and the run's params and returns the jobs service's
result dict (`counts`, `message`, `result_file`). Without the jobs service the
backups page calls the same functions in the request, with `ctx=None`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.backup.format import BackupError
from app.i18n import N_, gettext
from app.jobs import REGISTRY, register_kind


def backup_job(ctx: Any, note: str = "", keep: int | None = None, **_: Any) -> dict[str, Any]:
    from app.backup.tasks import run_backup

    result = run_backup(note=note, keep=keep)
    return {
        "counts": {"tables": result["tables"], "rows": result["rows"], "bytes": result["size"]},
        "result_file": result["file"],
        "message": gettext(N_("Backup %(file)s written and verified: %(rows)d rows."),
                           file=Path(result["file"]).name, rows=result["rows"]),
    }


def verify_job(ctx: Any, path: str, **_: Any) -> dict[str, Any]:
    from app.backup.tasks import run_verify

    result = run_verify(path)
    if not result["ok"]:
        raise BackupError("\n".join(result["problems"]))
    return {"counts": {}, "message": gettext(N_("%(file)s is intact."), file=Path(path).name)}


def restore_job(ctx: Any, path: str, force: bool = False, **_: Any) -> dict[str, Any]:
    from app.backup.tasks import run_restore

    result = run_restore(path, force=force)
    return {
        "counts": {"tables": result["tables"], "rows": result["rows"]},
        "message": gettext(N_("Restored %(rows)d rows from %(file)s."), rows=result["rows"],
                           file=Path(path).name),
    }


def schema_apply_job(ctx: Any, allow_destructive: bool = False, **_: Any) -> dict[str, Any]:
    from app.backup.tasks import run_schema_apply

    result = run_schema_apply(allow_destructive=allow_destructive)
    lines = [("! " if c["destructive"] else "+ ") + c["change"] for c in result["changes"]]
    message = "\n".join(lines + result["report"])
    if result["status"] in ("refused", "failed"):
        raise BackupError(message)
    return {"counts": {"changes": len(lines)}, "message": message,
            "result_file": result["backup"]}


JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "backup": backup_job,
    "backup_verify": verify_job,
    "backup_restore": restore_job,
    "schema_apply": schema_apply_job,
}


def jobs_available() -> bool:
    """Whether our kinds are registered with the jobs service (the init hook did it)."""
    return "backup" in REGISTRY


def register_jobs() -> None:
    """Register the backup kinds with the jobs service."""
    for kind, func in JOBS.items():
        register_kind(kind, func, queue="backup", timeout=6 * 3600)
