"""The guarded `schema apply`: plan in words, refuse data loss, back up, migrate, roll back.

Steps: the schema was checked when the app was built; diff the database with
it and say each change in words; refuse destructive changes (a dropped field, a
narrowed type, a new NOT NULL) unless allowed; take a backup; migrate (write a
revision for the changes, upgrade); sync roles; record an audit entry. On
PostgreSQL and SQLite the migration runs in one transaction, so a failure rolls
it back; MariaDB commits DDL as it goes, so there the backup is restored. The
backup is kept either way, and the outcome says exactly what happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from app.audit import record_event
from app.backup.create import create_backup
from app.backup.engine import check_foreign_keys, dedicated_engine, release_app_connections
from app.i18n import N_, gettext
from app.state import state


@dataclass
class ApplyOutcome:
    """What `guarded_apply` did: status is unchanged, refused, applied or failed."""

    status: str
    changes: list[tuple[str, bool]] = field(default_factory=list)
    revision: str | None = None
    backup: str | None = None
    report: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("unchanged", "applied")


def guarded_apply(
    message: str = "schema apply",
    *,
    allow_destructive: bool = False,
    take_backup: bool = True,
) -> ApplyOutcome:
    """Bring the database to the schema, or refuse, or roll back; never lose data silently."""
    from app.migrate import current_revision, has_revisions, head_revision, plan

    changes = plan()
    behind = has_revisions() and current_revision() != head_revision()
    if has_revisions() and not changes and not behind:
        return ApplyOutcome("unchanged", report=[gettext(N_("The database matches the schema."))])
    outcome = ApplyOutcome("refused", changes=changes)
    destructive = [text for text, lossy in changes if lossy]
    if destructive and not allow_destructive:
        outcome.report.append(
            gettext(N_("Refused: %(count)d change(s) can lose data (marked !). Nothing was "
                       "changed. Re-run with --allow-destructive to apply them; a backup is "
                       "taken first."), count=len(destructive))
        )
        return outcome
    if take_backup and current_revision() is not None:
        outcome.backup = str(create_backup(note=f"before schema apply: {message}"))
        outcome.report.append(gettext(N_("Backup taken: %(file)s"), file=outcome.backup))
    written: list[Path] = []
    engine = dedicated_engine(foreign_keys=False)
    release_app_connections()
    try:
        if engine.dialect.name == "mysql":
            with engine.connect() as conn:
                outcome.revision = _migrate(conn, message, written)
                conn.commit()
        else:
            with engine.connect() as conn, conn.begin():
                outcome.revision = _migrate(conn, message, written)
                check_foreign_keys(conn)
    except Exception as exc:  # noqa: BLE001 - any failure: undo, keep the backup, explain
        for path in written:
            path.unlink(missing_ok=True)
        outcome.status = "failed"
        outcome.report.append(gettext(N_("The migration failed: %(error)s"),
                                      error=str(exc).splitlines()[0]))
        outcome.report.append(_undo(engine, outcome))
        return outcome
    finally:
        engine.dispose()
        release_app_connections()
    from app.security.roles import sync_roles

    sync_roles()
    state().schema_mismatch = None
    outcome.status = "applied"
    if outcome.revision:
        outcome.report.append(gettext(N_("Applied revision %(revision)s."),
                                      revision=outcome.revision))
    else:
        outcome.report.append(gettext(N_("Applied the pending migrations.")))
    outcome.report.append(gettext(N_("Roles synced.")))
    record_audit("schema_apply", {
        "revision": outcome.revision, "backup": outcome.backup,
        "changes": [text for text, _ in changes],
    })
    return outcome


def _migrate(conn: Connection, message: str, written: list[Path]) -> str | None:
    """Upgrade to head, write a revision for what is still different, upgrade again."""
    from app.migrate import has_revisions, raw_diff, upgrade, write_revision_script
    from app.privacy.lookup import backfill_all

    _lock(conn)
    if has_revisions():
        upgrade("head", conn)
    if has_revisions() and not raw_diff(conn):
        backfill_all(conn)
        return None
    script = write_revision_script(message if has_revisions() else "initial schema", conn)
    if script is None:
        return None
    written.append(Path(script.path))
    upgrade("head", conn)
    backfill_all(conn)  # values written before their field was sealed (app/privacy/lookup.py)
    return script.revision


def _lock(conn: Connection) -> None:
    """One schema apply at a time across processes; the second finds nothing left to do."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7420160)")
    elif conn.dialect.name == "mysql":
        conn.exec_driver_sql("SELECT GET_LOCK('schemadesk_schema_apply', 600)")
    # SQLite: the migration's first write takes the database lock for the transaction.


def _undo(engine: Any, outcome: ApplyOutcome) -> str:
    """Say how the database was put back; on MariaDB, restore the backup to do it."""
    if engine.dialect.name != "mysql":
        return gettext(N_("Nothing was changed: the migration ran in one transaction and was "
                          "rolled back. The backup is kept at %(file)s."),
                       file=outcome.backup or "-")
    if not outcome.backup:
        return gettext(N_("This database cannot roll back schema changes and no backup was "
                          "taken: check it with `schemadesk schema diff`."))
    from app.backup.restore import restore_backup

    try:
        restore_backup(outcome.backup, force=True, safety_backup=False)
    except Exception as exc:  # noqa: BLE001
        return gettext(N_("Restoring the backup %(file)s failed too (%(error)s): restore it by "
                          "hand with `schemadesk backup restore --force %(file)s`."),
                       file=outcome.backup, error=str(exc).splitlines()[0])
    return gettext(N_("This database commits schema changes one by one, so the backup "
                      "%(file)s was restored: the data and schema are as before. The backup "
                      "is kept."), file=outcome.backup)


def record_audit(action: str, detail: dict[str, Any]) -> None:
    """Add an audit entry (in a transaction of its own) through the audit service."""
    record_event(action, detail=detail)
