"""`schemadesk backup create|list|restore|verify`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup

from app.backup.format import BackupError
from app.context import Actor, acting_as
from app.i18n import N_, gettext

backup_cli = AppGroup("backup", help="Create, list, verify and restore backups.")


def _resolve(file: str) -> Path:
    """A path as given, else a backup of that name in BACKUP_DIR."""
    path = Path(file)
    if path.exists():
        return path
    from app.backup.store import find_backup

    try:
        return find_backup(file)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc


def _size(num: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num < 1024 or unit == "GB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1024
    return str(num)


@backup_cli.command("create")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="File to write (default: a new file in BACKUP_DIR).")
@click.option("--note", default="", help="A note kept in the manifest.")
@click.option("--no-verify", is_flag=True, help="Skip reading the file back after writing it.")
@click.option("--native", type=click.Path(dir_okay=False), default=None,
              help="Also write an exact SQLite snapshot (online backup API) to this file.")
def backup_create(output: str | None, note: str, no_verify: bool, native: str | None) -> None:
    """Back up every table into one checksummed file."""
    from app.backup.tasks import run_backup

    with acting_as(Actor(user_id=None, name="cli", source="cli")):
        try:
            result = run_backup(note=note, output=output, verify=not no_verify, native=native)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(gettext(N_("Backup written: %(file)s (%(tables)d tables, %(rows)d rows, "
                          "%(size)s, %(seconds)ss)."),
                       file=result["file"], tables=result["tables"], rows=result["rows"],
                       size=_size(result["size"]), seconds=result["seconds"]))
    if result.get("verified") is not None:
        click.echo(gettext(N_("Verified: every table's rows and checksum match.")))
    if result.get("native"):
        click.echo(gettext(N_("SQLite snapshot written: %(file)s"), file=result["native"]))
    for path in result.get("pruned", []):
        click.echo(gettext(N_("Removed old backup %(file)s (BACKUP_KEEP)."), file=path))
    from app.backup.notes import keys_notice

    click.echo(keys_notice())


@backup_cli.command("list")
def backup_list() -> None:
    """List the backups in BACKUP_DIR, newest first."""
    from app.backup.store import list_backups

    files = list_backups()
    if not files:
        click.echo(gettext(N_("No backups yet.")))
        return
    for f in files:
        status = "?"
        if f.error:
            status = gettext(N_("unreadable"))
        elif f.status:
            status = gettext(N_("verified")) if f.status.get("ok") else gettext(N_("DAMAGED"))
        click.echo(f"{f.name}  {f.created_at}  {_size(f.size)}  {f.tables} tables  "
                   f"{f.rows} rows  {status}{'  encrypted' if f.encrypted else ''}"
                   f"{'  ' + f.note if f.note else ''}")


def _signature_options(func: Any) -> Any:
    """--key and --allow-unsigned, shared by verify and restore."""
    func = click.option(
        "--allow-unsigned", is_flag=True,
        help="Accept a backup without a signature (taken before backups were signed).",
    )(func)
    return click.option(
        "--key", "keys", multiple=True, envvar="SCHEMADESK_BACKUP_KEY",
        help="FIELD_ENCRYPTION_KEYS of the instance that took the backup (comma-separated or "
             "repeated; default: this console's own). Env: SCHEMADESK_BACKUP_KEY.",
    )(func)


@backup_cli.command("verify")
@click.argument("file")
@_signature_options
def backup_verify(file: str, keys: tuple[str, ...], allow_unsigned: bool) -> None:
    """Check a backup's signature, manifest and every checksum without restoring it."""
    from app.backup.signature import split_keys
    from app.backup.tasks import run_verify

    result = run_verify(str(_resolve(file)), split_keys(keys), allow_unsigned)
    if result["ok"]:
        m = result["manifest"]
        click.echo(gettext(N_("%(file)s is intact: %(tables)d tables, %(rows)d rows, revision "
                              "%(revision)s, taken %(time)s on %(engine)s."),
                           file=file, tables=len(m["tables"]), rows=m["total_rows"],
                           revision=m.get("revision"), time=m.get("created_at"),
                           engine=m.get("engine")))
        if not result["signed"]:
            click.echo(gettext(N_("Warning: %(file)s is not signed; nothing proves where it "
                                  "comes from."), file=file), err=True)
        return
    for problem in result["problems"]:
        click.echo(problem, err=True)
    sys.exit(1)


@backup_cli.command("restore")
@click.argument("file")
@click.option("--force", is_flag=True,
              help="Restore over a non-empty database (it is backed up first).")
@_signature_options
def backup_restore(file: str, force: bool, keys: tuple[str, ...], allow_unsigned: bool) -> None:
    """Restore a backup into the configured (empty) database, then upgrade to head."""
    from app.backup.signature import split_keys
    from app.backup.tasks import run_restore

    with acting_as(Actor(user_id=None, name="cli", source="cli")):
        try:
            report = run_restore(str(_resolve(file)), force=force,
                                 signing_keys=split_keys(keys), allow_unsigned=allow_unsigned)
        except BackupError as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
    if report.get("safety_backup"):
        click.echo(gettext(N_("The previous contents were backed up to %(file)s."),
                           file=report["safety_backup"]))
    click.echo(gettext(N_("Restored %(rows)d rows in %(tables)d tables from %(file)s "
                          "(revision %(revision)s, now at %(head)s) in %(seconds)ss; counts and "
                          "checksums match."),
                       rows=report["rows"], tables=report["tables"], file=file,
                       revision=report["revision"], head=report["head"],
                       seconds=report["seconds"]))
    if report.get("audit_kept"):
        click.echo(gettext(N_("The audit log was kept as it was (the backup's older log was not "
                              "loaded over it); the restore is audit entry #%(id)s."),
                           id=report.get("audit_entry")))
    else:
        click.echo(gettext(N_("The restore is audit entry #%(id)s."),
                           id=report.get("audit_entry")))
    if not report.get("subject_keys"):
        click.echo(gettext(N_("This database holds no data subject keys (backups do not carry "
                              "them): sealed values read as erased until you run `schemadesk "
                              "keys import FILE` with a key export.")))
    for warning in report.get("warnings", []):
        click.echo(warning, err=True)
