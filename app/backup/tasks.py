"""Backup work as the CLI, the backups page and the job queue run it; each returns a plain dict.

Every function needs an app context and records an audit entry (a restore
records its own, inside the restore).
"""

from __future__ import annotations

import time
from typing import Any

from flask import current_app

from app.backup.create import create_backup
from app.backup.format import BackupError, BackupReader
from app.backup.guard import record_audit
from app.backup.native import sqlite_snapshot
from app.backup.store import prune
from app.backup.verify import verify_and_record


def run_backup(
    note: str = "",
    output: str | None = None,
    verify: bool = True,
    native: str | None = None,
    keep: int | None = None,
) -> dict[str, Any]:
    """Take a backup (and optionally verify it, snapshot SQLite, prune); describe the result."""
    started = time.perf_counter()
    path = create_backup(output, note=note)
    with BackupReader(str(path), current_app.config.get("BACKUP_ENCRYPTION_KEY")) as reader:
        manifest = reader.manifest
    result: dict[str, Any] = {
        "file": str(path),
        "size": path.stat().st_size,
        "tables": len(manifest["tables"]),
        "rows": manifest["total_rows"],
        "verified": None,
    }
    if verify:
        checked = verify_and_record(path)
        result["verified"] = checked.ok
        if not checked.ok:
            raise BackupError("\n".join(checked.problems))
    if native:
        result["native"] = str(sqlite_snapshot(native))
    if output is None and keep is not None:
        result["pruned"] = [str(p) for p in prune(keep)]
    result["seconds"] = round(time.perf_counter() - started, 2)
    record_audit("backup", {k: result[k] for k in ("file", "tables", "rows", "size")})
    return result


def run_verify(path: str, signing_keys: list[str] | None = None,
               allow_unsigned: bool = False) -> dict[str, Any]:
    """Verify a backup file and record the result beside it."""
    result = verify_and_record(path, signing_keys=signing_keys, allow_unsigned=allow_unsigned)
    return {"file": path, "ok": result.ok, "problems": result.problems,
            "signed": result.signed, "manifest": result.manifest}


def run_restore(path: str, force: bool = False, signing_keys: list[str] | None = None,
                allow_unsigned: bool = False) -> dict[str, Any]:
    """Restore a backup into the app's database; raises BackupError when refused or failed.

    `signing_keys` (the FIELD_ENCRYPTION_KEYS of the instance that took it) and
    `allow_unsigned` come from the command line only: job params are shown on
    the jobs page, so keys never travel through them.
    """
    from app.backup.restore import restore_backup

    report = restore_backup(path, force=force, signing_keys=signing_keys,
                            allow_unsigned=allow_unsigned)
    result = {
        "file": path,
        "revision": report.revision,
        "head": report.head,
        "tables": report.tables,
        "rows": report.rows,
        "seconds": report.seconds,
        "safety_backup": report.safety_backup,
        "warnings": report.warnings,
        "audit_kept": report.keep_audit,
        "audit_entry": report.audit_entry,
        "subject_keys": report.subject_keys,
    }
    return result


def run_schema_apply(allow_destructive: bool = False, message: str = "schema apply") -> dict:
    """The guarded schema apply as a job: its status, plan and report in words."""
    from app.backup.guard import guarded_apply

    outcome = guarded_apply(message, allow_destructive=allow_destructive)
    return {
        "status": outcome.status,
        "changes": [{"change": text, "destructive": lossy} for text, lossy in outcome.changes],
        "revision": outcome.revision,
        "backup": outcome.backup,
        "report": outcome.report,
    }


def scheduled_backup() -> dict[str, Any]:
    """The BACKUP_SCHEDULE job: back up, verify, keep the newest BACKUP_KEEP files."""
    return run_backup(note="scheduled", keep=int(current_app.config.get("BACKUP_KEEP", 14)))

