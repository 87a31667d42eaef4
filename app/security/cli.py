"""`schemadesk keys rotate` and `schemadesk roles sync|matrix`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.i18n import N_, gettext

keys = AppGroup("keys", help="Field-encryption keys.")
roles = AppGroup("roles", help="Roles from the schema.")


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every encrypted field with the newest FIELD_ENCRYPTION_KEYS key."""
    from app.security.encryption import rotate_all

    for entity, count in rotate_all().items():
        click.echo(gettext(N_("%(entity)s: %(count)d record(s) re-encrypted."),
                           entity=entity, count=count))
    from app.security.mfa import rotate_secrets

    click.echo(gettext(N_("Two-factor secrets: %(count)d re-encrypted."), count=rotate_secrets()))


@roles.command("sync")
def roles_sync() -> None:
    """Make the roles in the database match the schema."""
    from app.security.roles import sync_roles

    for role, count in sync_roles().items():
        click.echo(gettext(N_("%(role)s: %(count)d permission(s)."), role=role, count=count))


@roles.command("matrix")
@click.option("--format", "fmt", type=click.Choice(["text", "csv"]), default="text")
def roles_matrix(fmt: str) -> None:
    """Print role × entity × action as granted (text table or CSV)."""
    from app.security.matrix import matrix_csv, matrix_text

    click.echo(matrix_csv() if fmt == "csv" else matrix_text(), nl=False)
