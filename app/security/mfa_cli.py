"""`schemadesk mfa reset USER`: an admin's way back in for a user who lost the phone.

The user's second factor (secret and recovery codes) is removed and every one
of their sessions ends; their next sign-in asks only for the password — or,
when their role says `mfa: required`, sends them to enrol again. Audited as
`mfa_disabled` with `reset: true`.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.i18n import N_, gettext

mfa_cli = AppGroup("mfa", help="Two-factor sign-in (两步验证).")


@mfa_cli.command("reset")
@click.argument("username")
def mfa_reset(username: str) -> None:
    """Remove USERNAME's two-factor sign-in and end their sessions."""
    from app.audit.capture import record_event
    from app.context import Actor, acting_as
    from app.security import mfa
    from app.security.sessions import revoke_user_sessions

    user = current_app.appbuilder.sm.find_user(username=username)
    if user is None:
        raise click.ClickException(gettext(N_("No user %(name)s."), name=username))
    if not mfa.is_enrolled(user.id):
        click.echo(gettext(N_("%(name)s has no two-factor sign-in."), name=username))
    mfa.disable(user.id)
    ended = revoke_user_sessions(user.id)
    with acting_as(Actor(user_id=None, name="cli", source="cli")):
        record_event("mfa_disabled", entity="ab_user", record_id=user.id, title=user.username,
                     detail={"reset": True, "sessions_ended": ended})
    click.echo(gettext(N_("Two-factor sign-in of %(name)s removed; %(count)d session(s) ended."),
                       name=username, count=ended))
