"""Login, failed login and logout entries, from Flask-Login signals and FAB's auth.

Successful sign-ins on the web come from Flask-Login's `user_logged_in`, sign-outs
from `user_logged_out`. Failed sign-ins (and API sign-ins, which do not go
through Flask-Login) are seen by wrapping the security manager's `auth_user_db`
and `auth_user_ldap` on this app's instance, so `app/security/manager.py` stays
as it is.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from flask import g, has_request_context, request
from flask_login import user_logged_in, user_logged_out

from app.context import Actor, current_actor

log = logging.getLogger(__name__)


def _actor_for(user: Any) -> Actor:
    base = current_actor()
    return Actor(getattr(user, "id", None), getattr(user, "username", None) or base.name,
                 base.source, base.client_ip, base.request_id)


def _safe_record(action: str, user: Any = None, detail: dict | None = None) -> None:
    """Record an auth event; a failure to log must not turn a sign-in into a 500."""
    from app.audit.capture import record_event
    from app.security.login_log import login_context

    detail = {**(detail or {}), **login_context()} or None
    actor = _actor_for(user) if user is not None else current_actor()
    try:
        record_event(action, entity="ab_user",
                     record_id=getattr(user, "id", None),
                     title=getattr(user, "username", None) or (detail or {}).get("username"),
                     detail=detail, actor=actor)
    except Exception:  # noqa: BLE001 - logged, never swallowed silently
        log.exception("could not write the audit entry for %s", action)


def install(app: Any, sm: Any) -> None:
    """Connect the signals for `app` and wrap its security manager's auth methods."""

    def on_login(sender: Any, user: Any = None, **_: Any) -> None:
        if g.get("sd_mfa_pending"):
            return  # written once the second step is done (app/security/mfa.py)
        _safe_record("login", user)

    def on_logout(sender: Any, user: Any = None, **_: Any) -> None:
        if g.get("sd_session_ended"):
            return  # a revoked session's cookie was refused; the user did not log out
        if user is not None and getattr(user, "is_authenticated", False):
            _safe_record("logout", user)

    user_logged_in.connect(on_login, sender=app, weak=False)
    user_logged_out.connect(on_logout, sender=app, weak=False)

    for name in ("auth_user_db", "auth_user_ldap"):
        original = getattr(sm, name, None)
        if original is not None:
            setattr(sm, name, _wrap_auth(original))


def _wrap_auth(original: Any) -> Any:
    @functools.wraps(original)
    def wrapper(username: Any, password: Any, *args: Any, **kwargs: Any) -> Any:
        user = original(username, password, *args, **kwargs)
        if user is None:
            from app.security.login_log import failure_reason

            _safe_record("login_failed", None, {"username": str(username or "")[:255],
                                                "reason": failure_reason(username)})
        elif g.get("sd_mfa_pending"):
            pass  # the second step writes the entry (app/security/mfa.py)
        elif has_request_context() and request.path.startswith("/api/"):
            _safe_record("login", user, {"via": "api"})
        return user

    return wrapper
