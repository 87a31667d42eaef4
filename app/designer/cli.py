"""`schemadesk schema export|versions`, and `schema apply` of the file as a new version."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app.i18n import N_, gettext


@click.command("export")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--version", "number", type=int, default=None,
              help="Export this version number instead of the current one.")
@with_appcontext
def schema_export(path: str | None, number: int | None) -> None:
    """Write the current schema version's YAML (as written, comments kept); stdout without PATH."""
    from app.designer.versions import current_version, list_versions

    version = current_version()
    if number is not None:
        version = next((v for v in list_versions() if v.number == number), None)
        if version is None:
            raise click.ClickException(gettext(N_("No such schema version.")))
    if path is None:
        click.echo(version.yaml_text, nl=False)
        return
    Path(path).write_text(version.yaml_text, encoding="utf-8")
    click.echo(gettext(N_("Wrote version %(number)d to %(file)s."), number=version.number,
                       file=path), err=True)


@click.command("versions")
@with_appcontext
def schema_versions() -> None:
    """List the schema versions, newest first: number, time, author, comment, revision."""
    from app.designer.versions import list_versions

    for v in list_versions():
        click.echo(f"{v.number:>4}  {v.created_at:%Y-%m-%d %H:%M}  {v.author or '-':<16}  "
                   f"{v.revision or '-':<12}  {v.comment or ''}")


def has_versions() -> bool:
    """Whether the database stores schema versions (then the file is imported as a new one)."""
    from app.designer.versions import latest_number
    from app.state import state

    return latest_number(state().db.engine) is not None


def apply_file_as_version(message: str, allow_destructive: bool) -> None:
    """`schema apply` once the schema lives in the database: the file becomes the next version.

    Destructive steps are confirmed by --allow-destructive (the CLI's typed
    confirmation); everything else is the designer's path.
    """
    from app.designer.versions import (
        ChangeFailed,
        ChangeRefused,
        apply_change,
        current_version,
        digest_of,
        plan_change,
    )
    from app.state import state

    text = Path(current_app.config["SCHEMA_PATH"]).read_text(encoding="utf-8")
    if digest_of(text) == current_version().digest:
        click.echo(gettext(N_("The schema file is the current version; nothing to apply.")))
        return
    plan = plan_change(text)
    for step in plan.steps:
        click.echo(f"{'!' if step.destructive else '+'} {step.text}")
    confirmations = plan.confirmations if allow_destructive else []
    author = "cli"
    try:
        version = apply_change(text, author=author, comment=message, confirmations=confirmations)
    except ChangeRefused as exc:
        for problem in exc.plan.errors:
            click.echo(problem.format(), err=True)
        click.echo(exc.message, err=True)
        if plan.confirmations and not allow_destructive:
            click.echo(gettext(N_("Re-run with --allow-destructive to apply them; a backup is "
                                  "taken first.")), err=True)
        sys.exit(1)
    except ChangeFailed as exc:
        for line in exc.report:
            click.echo(line, err=True)
        sys.exit(1)
    state().schema_number = version.number
    click.echo(gettext(N_("Applied schema version %(number)d (revision %(revision)s); every "
                          "process switches to it within seconds."),
                       number=version.number, revision=version.revision or "-"))
