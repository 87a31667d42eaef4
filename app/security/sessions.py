"""Signed-in sessions (在线会话) that can be ended from the server.

Flask's session is a signed cookie: without server state, a copied cookie keeps
working after logout. So each sign-in gets a row in `user_session` and only its
random `sid` goes into the cookie. Every request with a signed-in cookie reads
that row (one indexed lookup); a missing or revoked row signs the browser out.
Logout revokes the row; a password change or reset revokes every row of that
user (but the session that made the change, when users change their own).

Bearer-token API calls carry no cookie and are not affected (JWTs expire on
their own, `JWT_ACCESS_TOKEN_EXPIRES`).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

import sqlalchemy as sa
from flask import Flask, g, has_request_context, request, session
from flask_login import logout_user, user_logged_in, user_logged_out

from app.models import utcnow
from app.state import state

SESSION_KEY = "_sd_sid"
LOGIN_KEYS = ("_user_id", "_fresh", "_id")
TOUCH_EVERY = dt.timedelta(seconds=60)  # last_seen_at is written at most this often
log = logging.getLogger(__name__)


def _table() -> sa.Table:
    return state().models.system["user_session"]


def current_sid() -> str | None:
    """The sid of this request's signed-in session, if any."""
    return session.get(SESSION_KEY) if has_request_context() else None


def start_session(user: Any) -> str:
    """Record a new signed-in session for `user` and put its sid in the Flask session."""
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    with state().db.engine.begin() as conn:
        conn.execute(sa.insert(_table()).values(
            sid=sid, user_id=user.id, created_at=now, last_seen_at=now,
            ip=(request.remote_addr or "")[:64] or None,
            user_agent=(request.user_agent.string or "")[:255] or None,
        ))
    session[SESSION_KEY] = sid
    return sid


def revoke_session(sid: str) -> None:
    """End one session (logout)."""
    table = _table()
    with state().db.engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.sid == sid, table.c.revoked_at.is_(None))
                     .values(revoked_at=utcnow()))


def revoke_user_sessions(user_id: int, keep_sid: str | None = None) -> int:
    """End every session of `user_id` (but `keep_sid`); return how many were ended."""
    table = _table()
    query = sa.update(table).where(table.c.user_id == user_id, table.c.revoked_at.is_(None))
    if keep_sid:
        query = query.where(table.c.sid != keep_sid)
    with state().db.engine.begin() as conn:
        return conn.execute(query.values(revoked_at=utcnow())).rowcount or 0


def session_is_live() -> bool:
    """Whether this request's signed-in cookie belongs to a live session row."""
    sid = session.get(SESSION_KEY)
    if not sid:
        return False
    table = _table()
    with state().db.engine.connect() as conn:
        row = conn.execute(
            sa.select(table.c.user_id, table.c.revoked_at, table.c.last_seen_at)
            .where(table.c.sid == sid)
        ).first()
    if row is None or row.revoked_at is not None or str(row.user_id) != str(session["_user_id"]):
        return False
    if utcnow() - row.last_seen_at > TOUCH_EVERY:
        with state().db.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.sid == sid).values(last_seen_at=utcnow()))
    return True


def _sign_out_dead_session() -> None:
    """Before each request: a cookie whose session was ended is signed out."""
    if request.path.startswith("/static") or "_user_id" not in session:
        return
    if not session_is_live():
        g.sd_session_ended = True  # not a logout the user asked for: no audit "logout"
        logout_user()
        session.pop(SESSION_KEY, None)


def init_sessions(app: Flask, appbuilder: Any) -> None:
    """Init hook: a session row per sign-in, checked on every request, ended at logout."""

    def on_login(sender: Any, user: Any = None, **_: Any) -> None:
        if user is not None:
            start_session(user)

    def on_logout(sender: Any, user: Any = None, **_: Any) -> None:
        sid = session.pop(SESSION_KEY, None)
        if sid and not g.get("sd_session_ended"):
            revoke_session(sid)
        for key in LOGIN_KEYS:
            session.pop(key, None)

    user_logged_in.connect(on_login, sender=app, weak=False)
    user_logged_out.connect(on_logout, sender=app, weak=False)
    app.before_request(_sign_out_dead_session)
