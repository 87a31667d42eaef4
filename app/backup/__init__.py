"""Logical backups that restore into any supported engine, verified by checksum.

- `format`: the file (a zip of canonical JSON lines per table plus a manifest).
- `create`: take a backup from one snapshot of the database.
- `verify`: check a file without restoring it.
- `restore`: load a backup into an empty database (of any engine).
- `native`: SQLite's own online backup, an exact copy beside the portable file.
- `store`: the files in BACKUP_DIR, listing and retention.
- `guard`: the guarded `schema apply` (plan, refuse, back up, migrate, roll back).
"""

from typing import Any

from app.backup.format import BackupError

__all__ = ["BackupError", "init_app"]


def init_app(app: Any, appbuilder: Any) -> None:
    """Init hook: the backups page, the backup job kinds, and the BACKUP_SCHEDULE slot."""
    import logging

    from app.backup import jobs, schedule, views

    views.register(appbuilder)
    jobs.register_jobs()
    if app.config.get("BACKUP_SCHEDULE"):
        schedule.next_slot(app.config["BACKUP_SCHEDULE"])
        try:
            schedule.ensure_scheduled()
        except Exception as exc:  # noqa: BLE001 - Redis down must not stop the console
            logging.getLogger(__name__).warning("BACKUP_SCHEDULE not scheduled: %s", exc)
