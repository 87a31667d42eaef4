"""`schemadesk erase`, `schemadesk retention preview|run|report`, `schemadesk keys export|import`.

`keys export` and `keys import` join `schemadesk keys` (app/security/cli.py) when
this module is imported (app/cli_commands.py does, for `erase`).
"""

from __future__ import annotations

import csv
import datetime as dt
import sys

import click
from flask.cli import AppGroup, with_appcontext

from app.context import Actor, acting_as
from app.i18n import N_, gettext
from app.security.cli import keys as keys_cli

retention_cli = AppGroup("retention", help="Retention rules (保存期限).")


@click.command("erase")
@click.argument("entity")
@click.argument("record_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for the record's title.")
@with_appcontext
def erase_command(entity: str, record_id: int, yes: bool) -> None:
    """Erase a data subject: delete or anonymise it and destroy its key (cannot be undone)."""
    from app.records import records
    from app.records.service import RecordError

    try:
        service = records(entity, None)
        obj = service.get(record_id, "read")
    except (KeyError, RecordError) as exc:
        raise click.ClickException(getattr(exc, "message", str(exc))) from None
    if not yes:
        click.confirm(gettext(N_("Erase %(entity)s #%(id)s (%(title)s)? This cannot be undone."),
                              entity=entity, id=record_id, title=str(obj)), abort=True)
    try:
        done = service.erase(obj)
    except RecordError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(gettext(N_("Erased %(entity)s #%(id)s (%(mode)s): %(keys)d key(s) destroyed, "
                          "%(count)d record(s), %(exports)d export file(s) removed; audit entry "
                          "%(hash)s."), entity=entity, id=record_id, mode=done["mode"],
                       keys=done["keys_destroyed"], count=len(done["erased"]),
                       exports=done["exports_removed"], hash=done["audit_hash"] or "-"))


@retention_cli.command("preview")
@click.option("--on", "on", default=None, help="The day of the run (YYYY-MM-DD).")
def retention_preview(on: str | None) -> None:
    """How many records each rule would change on its next run."""
    from app.privacy.retention import preview

    day = dt.date.fromisoformat(on) if on else None
    for item in preview(day):
        click.echo(gettext(N_("%(count)d %(entity)s record(s) will be %(action)s on %(day)s."),
                           count=item["count"], entity=item["entity"],
                           action=item["action"], day=item["on"].isoformat()))


@retention_cli.command("run")
@click.option("--slot", default=None, help="The slot this run belongs to (default: now).")
@click.option("--on", "on", default=None, help="The day the rules are evaluated for.")
def retention_run(slot: str | None, on: str | None) -> None:
    """Run every retention rule for a slot (once per slot, whatever runs it)."""
    from app.privacy.retention import run_all, slot_name

    slot = slot or slot_name(dt.datetime.now(dt.UTC))
    day = dt.date.fromisoformat(on) if on else None
    for result in run_all(slot, day):
        if result["skipped"]:
            click.echo(gettext(N_("%(entity)s: slot %(slot)s already ran."),
                               entity=result["entity"], slot=slot))
        else:
            click.echo(gettext(N_("%(entity)s: %(count)d record(s) changed (run %(run)s)."),
                               entity=result["entity"], count=result["changed"],
                               run=result["run"]))


@retention_cli.command("report")
@click.argument("run_id", type=int)
def retention_report(run_id: int) -> None:
    """Print a run's destruction report as CSV."""
    from app.privacy.retention import report_rows

    writer = csv.writer(sys.stdout)
    for row in report_rows(run_id):
        writer.writerow(row)


@keys_cli.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
def keys_export(file: str) -> None:
    """Write the data subjects' keys (wrapped by the instance key) to FILE, for recovery."""
    from app.privacy.keystore import export_keys

    with acting_as(Actor(user_id=None, name="cli", source="cli")):
        count = export_keys(file)
    click.echo(gettext(N_("%(count)d subject key(s) written to %(file)s, wrapped by the instance "
                          "key: keep the file apart from the backups, and destroy it once a newer "
                          "export exists (it still holds the keys of records erased after it "
                          "was made)."), count=count, file=file))


@keys_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def keys_import(file: str) -> None:
    """Add the keys of a `keys export` FILE that are missing, except those of erased records."""
    from app.privacy.keystore import KeystoreError, import_keys

    with acting_as(Actor(user_id=None, name="cli", source="cli")):
        try:
            result = import_keys(file)
        except KeystoreError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(gettext(N_("%(added)d subject key(s) added, %(present)d already present, "
                          "%(skipped)d skipped: their records were erased."),
                       added=result.added, present=result.present, skipped=result.skipped))
    if result.unreadable:
        click.echo(gettext(N_("Warning: %(count)d added key(s) are wrapped by an instance key "
                              "this console does not hold; add that key to "
                              "FIELD_ENCRYPTION_KEYS to read their values."),
                           count=result.unreadable), err=True)
