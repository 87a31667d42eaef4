"""`schemadesk import` and `schemadesk export`."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click
from flask.cli import with_appcontext

from app.i18n import N_, gettext


@contextlib.contextmanager
def cli_language() -> Iterator[str]:
    """Speak the terminal's language (SCHEMADESK_LANG, else LANG) inside the block."""
    from flask_babel import force_locale

    lang = os.environ.get("SCHEMADESK_LANG") or os.environ.get("LANG", "en")
    code = "zh" if lang.lower().startswith("zh") else "en"
    with force_locale("zh_CN" if code == "zh" else "en"):
        yield code


def _check_entity(entity: str) -> None:
    from app.state import state

    if not state().spec.has_entity(entity):
        names = ", ".join(e.name for e in state().spec.entities)
        raise click.ClickException(
            gettext(N_("No entity named %(entity)s (entities: %(names)s)."), entity=entity,
                    names=names))


@click.command("import")
@click.argument("entity")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check and count; write nothing.")
@click.option("--async", "run_async", is_flag=True, help="Run as a background job.")
@click.option("--encoding", default=None, help="CSV encoding (default: detected).")
@click.option("--sheet", default=None, help="XLSX sheet (default: the first).")
@with_appcontext
def import_command(entity: str, file: str, dry_run: bool, run_async: bool,
                   encoding: str | None, sheet: str | None) -> None:
    """Import a CSV or XLSX file into ENTITY (exit 3 when rows were rejected)."""
    from app.io.importer import import_file
    from app.io.reader import FileError

    with cli_language() as lang:
        _check_entity(entity)
        if run_async:
            from app.jobs import enqueue

            run_id = enqueue("import", {"entity": entity, "path": str(Path(file).resolve()),
                                        "dry_run": dry_run, "encoding": encoding,
                                        "sheet": sheet, "lang": lang,
                                        "filename": Path(file).name})
            click.echo(gettext(N_("Queued job %(id)s."), id=run_id))
            return
        try:
            result = import_file(entity, file, dry_run=dry_run, encoding=encoding, sheet=sheet)
        except FileError as exc:
            raise click.ClickException(gettext(exc.message, **exc.params)) from None
        if result.computed_columns:
            click.echo(gettext(N_("Columns not imported (calculated by the rules): "
                                  "%(columns)s"), columns=", ".join(result.computed_columns)),
                       err=True)
        if result.unknown_columns:
            click.echo(gettext(N_("Columns not imported (no such field): %(columns)s"),
                               columns=", ".join(result.unknown_columns)), err=True)
        for problem in result.problems:
            click.echo(gettext(N_("line %(line)s: %(reason)s"), line=problem.line,
                               reason="; ".join(problem.reasons)), err=True)
        summary = N_("Dry run: %(created)s to create, %(updated)s to update, "
                     "%(unchanged)s unchanged, %(rejected)s rejected.") if dry_run else N_(
            "Imported: %(created)s created, %(updated)s updated, %(unchanged)s unchanged, "
            "%(rejected)s rejected.")
        click.echo(gettext(summary, **result.counts()))
        if result.error_file:
            click.echo(gettext(N_("Rejected rows and reasons: %(path)s"), path=result.error_file))
        if result.rejected:
            sys.exit(3)


@click.command("export")
@click.argument("entity")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None,
              help="Default: from the file name.")
@with_appcontext
def export_command(entity: str, file: str, fmt: str | None) -> None:
    """Export every record of ENTITY to a CSV (UTF-8 with BOM) or XLSX file."""
    from app.io.exporter import audit_export, write_export

    with cli_language() as lang:
        _check_entity(entity)
        fmt = "xlsx" if (fmt or Path(file).suffix.lstrip(".")).lower() == "xlsx" else "csv"
        count = write_export(entity, file, fmt, lang=lang)
        audit_export(entity, fmt, count, {}, Path(file).name)
        click.echo(gettext(N_("Exported %(count)s rows to %(path)s."), count=count, path=file))
