"""The `schemadesk` command group (a Flask CLI group bound to the app)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import FlaskGroup

from app.i18n import N_, gettext


def _make_app() -> Any:
    from app import create_app
    from app.schema import SchemaError

    try:
        return create_app()
    except SchemaError as exc:
        _print_problems(exc.problems)
        sys.exit(2)


def _print_problems(problems: list[Any]) -> None:
    for p in problems:
        click.echo(p.format(), err=True)


@click.group(
    cls=FlaskGroup,
    create_app=_make_app,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
)
def main() -> None:
    """SchemaDesk: a console generated from a YAML schema."""


@main.group()
def schema() -> None:
    """Check, diff and apply the schema."""


@schema.command("check", with_appcontext=False)
@click.argument("path", required=False)
def schema_check(path: str | None) -> None:
    """Print every problem in the schema; exit non-zero on any error."""
    from app.schema import check_file

    path = path or os.environ.get("SCHEMA_PATH") or "schema/crm.yaml"
    with _cli_translations():
        spec, problems = check_file(path)
        _print_problems(problems)
        errors = [p for p in problems if p.is_error]
        warnings = [p for p in problems if not p.is_error]
        click.echo(
            gettext(
                N_("%(path)s: %(errors)d error(s), %(warnings)d warning(s)"),
                path=path,
                errors=len(errors),
                warnings=len(warnings),
            )
        )
    sys.exit(1 if errors else 0)


class _cli_translations:
    """A bare app context so CLI messages are translated (LANG=zh_CN.UTF-8 -> Chinese)."""

    def __enter__(self) -> None:
        from flask import Flask
        from flask_babel import Babel

        from config import ROOT

        app = Flask("schemadesk-cli")
        lang = os.environ.get("SCHEMADESK_LANG") or os.environ.get("LANG", "en")
        app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(ROOT / "translations")
        Babel(app, locale_selector=lambda: "zh_CN" if lang.startswith("zh") else "en")
        self.ctx = app.test_request_context()
        self.ctx.push()

    def __exit__(self, *exc: Any) -> None:
        self.ctx.pop()


@schema.command("diff")
def schema_diff() -> None:
    """Print the changes between the database and the schema, in words."""
    from app.migrate import plan

    changes = plan()
    if not changes:
        click.echo(gettext(N_("The database matches the schema.")))
        return
    for text, destructive in changes:
        mark = "!" if destructive else "+"
        click.echo(f"{mark} {text}")


@schema.command("apply")
@click.option("--message", "-m", default="schema apply")
@click.option("--allow-destructive", is_flag=True,
              help="Apply changes that can lose data (a backup is taken first).")
@click.option("--no-backup", is_flag=True, help="Skip the backup before migrating.")
def schema_apply(message: str, allow_destructive: bool, no_backup: bool) -> None:
    """Plan the changes in words, refuse data loss, back up, migrate, sync roles."""
    from app.backup.guard import guarded_apply
    from app.context import Actor, acting_as
    from app.designer.cli import apply_file_as_version, has_versions

    if has_versions():  # the schema lives in the database: the file becomes a new version
        with acting_as(Actor(user_id=None, name="cli", source="cli")):
            apply_file_as_version(message, allow_destructive)
        return
    with acting_as(Actor(user_id=None, name="cli", source="cli")):
        outcome = guarded_apply(message, allow_destructive=allow_destructive,
                                take_backup=not no_backup)
    for text, destructive in outcome.changes:
        click.echo(f"{'!' if destructive else '+'} {text}")
    for line in outcome.report:
        click.echo(line, err=not outcome.ok)
    if not outcome.ok:
        sys.exit(1)


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema's migrations (the initial one is written if none exist)."""
    from app.migrate import apply, has_revisions, upgrade
    from app.privacy.lookup import backfill_all
    from app.security.roles import sync_roles

    if has_revisions():
        upgrade()
    else:
        apply("initial schema")
    backfill_all()  # values written before their field was sealed (app/privacy/lookup.py)
    sync_roles()
    click.echo(gettext(N_("Database is up to date.")))


@main.group()
def user() -> None:
    """Users."""


@user.command("create")
@click.argument("username")
@click.option("--role", "role_name", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--email", default=None)
@click.option("--first-name", default=None)
@click.option("--last-name", default="")
def user_create(
    username: str,
    role_name: str,
    password: str,
    email: str | None,
    first_name: str | None,
    last_name: str,
) -> None:
    """Create a login account with a role."""
    from app.security.headers import password_policy

    try:
        password_policy(password)
    except Exception as exc:  # the policy's message says what is wrong
        raise click.ClickException(str(exc)) from None
    sm = current_app.appbuilder.sm
    role = sm.find_role(role_name)
    if role is None:
        raise click.ClickException(gettext(N_("No role named %(role)s."), role=role_name))
    if sm.find_user(username=username) is not None:
        raise click.ClickException(gettext(N_("User %(user)s already exists."), user=username))
    created = sm.add_user(
        username,
        first_name or username,
        last_name or "-",
        email or f"{username}@example.com",
        role,
        password=password,
    )
    if not created:
        raise click.ClickException(gettext(N_("Could not create user %(user)s."), user=username))
    click.echo(gettext(N_("Created user %(user)s."), user=username))


def register(command: Any) -> Any:
    """Add a command or group from a service package (audit, jobs, io, backup)."""
    main.add_command(command)
    return command


def _load_service_commands() -> None:
    from app import cli_commands

    for command in cli_commands.ALL:
        main.add_command(command)


_load_service_commands()


def _load_designer_commands() -> None:
    from app.designer.cli import schema_export, schema_versions

    schema.add_command(schema_export)
    schema.add_command(schema_versions)


_load_designer_commands()


if __name__ == "__main__":
    main()
