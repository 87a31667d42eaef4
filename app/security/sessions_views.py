"""Signed-in sessions (在线用户): who is signed in where, and ending a session.

Admins see every live session at /security/sessions/ and can end any; every
user sees their own on the account page (app/security/mfa_views.py) and can end
the others. Ending one revokes its `user_session` row, so that browser's next
request is signed out (app/security/sessions.py); it is written to the audit
log as `session_ended` (shown in the login log) with who ended it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for

from app.i18n import N_, gettext
from app.models import utcnow
from app.security.sessions import current_sid
from app.state import state


def live_sessions(user_id: int | None = None) -> list[dict[str, Any]]:
    """Return the sessions not ended (newest activity first), of `user_id` or of everyone."""
    sessions = state().models.system["user_session"]
    users = state().models.metadata.tables["ab_user"]
    query = (
        sa.select(sessions, users.c.username)
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.revoked_at.is_(None))
        .order_by(sessions.c.last_seen_at.desc())
    )
    if user_id is not None:
        query = query.where(sessions.c.user_id == user_id)
    mine = current_sid()
    with state().db.engine.connect() as conn:
        return [
            {"id": r.id, "user_id": r.user_id, "username": r.username, "ip": r.ip or "",
             "agent": r.user_agent or "", "started": r.created_at, "last_seen": r.last_seen_at,
             "current": r.sid == mine}
            for r in conn.execute(query)
        ]


def end_session(session_id: int, owner_id: int | None = None) -> bool:
    """End the live session `session_id` (only if it is `owner_id`'s, when given); audit it."""
    sessions = state().models.system["user_session"]
    users = state().models.metadata.tables["ab_user"]
    with state().db.engine.begin() as conn:
        row = conn.execute(
            sa.select(sessions, users.c.username)
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
        ).first()
        if row is None or (owner_id is not None and row.user_id != owner_id):
            return False
        conn.execute(sa.update(sessions).where(sessions.c.id == session_id)
                     .values(revoked_at=utcnow()))
    _audit_ended(row.user_id, row.username, {"session": row.id, "session_ip": row.ip,
                                             "agent": row.user_agent})
    return True


def end_other_sessions(user: Any) -> int:
    """End every session of `user` but this one ("sign out other sessions"); audit it."""
    from app.security.sessions import revoke_user_sessions

    count = revoke_user_sessions(user.id, keep_sid=current_sid())
    if count:
        _audit_ended(user.id, user.username, {"sessions": count, "others": True})
    return count


def _audit_ended(user_id: int, username: str, detail: dict[str, Any]) -> None:
    from app.audit.capture import record_event

    record_event("session_ended", entity="ab_user", record_id=user_id, title=username,
                 detail={k: v for k, v in detail.items() if v is not None})


def make_sessions_view() -> type:
    """Return the admins' page /security/sessions/ (在线用户)."""
    from flask_appbuilder import BaseView, expose
    from flask_appbuilder.security.decorators import has_access

    class SessionsView(BaseView):
        route_base = "/security/sessions"
        default_view = "index"
        class_permission_name = "user_session"
        method_permission_name = {"index": "read", "end": "delete"}
        base_permissions = ["can_read", "can_delete"]

        @expose("/")
        @has_access
        def index(self) -> str:
            user = request.args.get("user", "").strip().lower()
            rows = [r for r in live_sessions() if user in r["username"].lower()]
            return self.render_template("security/sessions.html", rows=rows, user=user)

        @expose("/<int:session_id>/end", methods=["POST"])
        @has_access
        def end(self, session_id: int) -> Any:
            if not end_session(session_id):
                abort(404)
            flash(gettext(N_("The session was ended; that browser is signed out.")), "success")
            return redirect(url_for("SessionsView.index"))

    return SessionsView


def init_sessions_pages(app: Any, appbuilder: Any) -> None:
    """Init hook: 在线用户 under Security, 登录日志 under Audit, the account pages."""
    from flask_babel import lazy_gettext

    from app.security.login_log import make_login_log_view
    from app.security.mfa import init_mfa

    init_mfa(app, appbuilder)
    appbuilder.add_view(make_sessions_view(), "user_sessions",
                        label=lazy_gettext("Signed-in users"), icon="fa-users",
                        category="Security")
    appbuilder.add_view(make_login_log_view(), "login_log", label=lazy_gettext("Login log"),
                        icon="fa-sign-in", category="Audit",
                        category_label=lazy_gettext("Audit"))
