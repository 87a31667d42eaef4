"""`schemadesk audit verify [--expect-head HASH]`."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from app.context import Actor, acting_as
from app.i18n import N_, gettext

audit = AppGroup("audit", help="The tamper-evident audit log.")


@audit.command("verify")
@click.option("--expect-head", default=None,
              help="A head hash recorded earlier; it must still be in the chain.")
def verify_command(expect_head: str | None) -> None:
    """Walk the hash chain; exit 1 naming the first entry that does not match."""
    from app.audit.service import run_verify

    with acting_as(Actor(None, "audit verify", "cli")):
        result = run_verify(expect_head)
    click.echo(gettext(N_("Checked %(count)s entries."), count=result.count))
    click.echo(gettext(N_("Head: #%(id)s %(hash)s"), id=result.head_id, hash=result.head_hash))
    if result.problem is not None:
        click.echo(gettext(N_("FAILED: %(problem)s"), problem=result.problem.message), err=True)
        sys.exit(1)
    if expect_head:
        click.echo(gettext(N_("The expected head is in the chain.")))
    click.echo(gettext(N_("OK: the audit log is intact.")))
