"""The login log (登录日志): sign-ins, failures with their reason, logouts, ended sessions.

It is a view over the audit log, not a table of its own: every entry is
already written there (app/audit/auth.py, with the client address as the
trusted proxies report it and the browser's user agent in `detail`), so it is
covered by the hash chain, the retention of the audit log and its export
rights, and there is no second copy to keep in step. The page filters the
entries on the user table (`entity = ab_user`) with the actions below.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Response, has_request_context, request

from app.i18n import N_, gettext
from app.state import state

PAGE_SIZE = 50
OUTCOMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "success": (N_("Signed in"), ("login",)),
    "failure": (N_("Failed sign-in"), ("login_failed",)),
    "logout": (N_("Signed out"), ("logout",)),
    "ended": (N_("Session ended"), ("session_ended",)),
    "mfa": (N_("Two-factor settings"), ("mfa_enabled", "mfa_disabled", "mfa_recovery_codes")),
}
ACTION_OUTCOME = {action: key for key, (_, actions) in OUTCOMES.items() for action in actions}
REASONS = {
    "wrong_password": N_("Wrong password"),
    "unknown_user": N_("Unknown user"),
    "inactive": N_("Account disabled"),
    "wrong_code": N_("Wrong two-factor code"),
    "code_missing": N_("No two-factor code"),
    "not_enrolled": N_("Two-factor sign-in not set up"),
    "locked_out": N_("Locked out (too many failures)"),
}
MFA_METHODS = {"totp": N_("Authenticator code"), "recovery": N_("Recovery code")}


def login_context() -> dict[str, Any]:
    """What a login log entry keeps about the browser besides its address: the user agent."""
    if not has_request_context():
        return {}
    agent = (request.user_agent.string or "")[:255]
    return {"agent": agent} if agent else {}


def failure_reason(username: Any) -> str:
    """Why a password sign-in of `username` failed: unknown user, disabled, wrong password."""
    from flask import current_app

    user = current_app.appbuilder.sm.find_user(username=str(username or ""))
    if user is None:
        return "unknown_user"
    return "wrong_password" if user.is_active else "inactive"


def record_auth_event(action: str, user: Any = None, detail: dict | None = None) -> None:
    """Write a login log entry (an audit entry on the user); never fails the request."""
    from app.audit.auth import _safe_record

    _safe_record(action, user, detail)


# -- the page ----------------------------------------------------------------


@dataclass
class LogFilters:
    """The page's filters, read from the query string."""

    user: str = ""
    outcome: str = ""
    since: dt.date | None = None
    until: dt.date | None = None

    @classmethod
    def from_args(cls, args: Any) -> LogFilters:
        def day(name: str) -> dt.date | None:
            try:
                return dt.date.fromisoformat(args.get(name, "").strip())
            except ValueError:
                return None

        outcome = args.get("outcome", "")
        return cls(user=args.get("user", "").strip()[:255],
                   outcome=outcome if outcome in OUTCOMES else "",
                   since=day("since"), until=day("until"))

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in vars(self).items() if v}

    def where(self, table: sa.Table) -> list[Any]:
        actions = OUTCOMES[self.outcome][1] if self.outcome else tuple(ACTION_OUTCOME)
        clauses: list[Any] = [table.c.entity == "ab_user", table.c.action.in_(actions)]
        if self.user:
            needle = self.user.lower()  # % and _ typed by the user match themselves
            clauses.append(sa.or_(
                sa.func.lower(table.c.record_title).contains(needle, autoescape=True),
                sa.func.lower(table.c.actor_name).contains(needle, autoescape=True)))
        if self.since:
            clauses.append(table.c.created_at >= dt.datetime.combine(self.since, dt.time()))
        if self.until:
            end = dt.datetime.combine(self.until + dt.timedelta(days=1), dt.time())
            clauses.append(table.c.created_at < end)
        return clauses


def entry_row(row: Any) -> dict[str, Any]:
    """Return one audit entry as a login log row in the current language."""
    from app.audit.views import action_label

    try:
        detail = json.loads(row.detail) if row.detail else {}
    except ValueError:
        detail = {}
    detail = detail if isinstance(detail, dict) else {}
    outcome = ACTION_OUTCOME.get(row.action, "")
    reason = detail.get("reason")
    note = gettext(REASONS[reason]) if reason in REASONS else ""
    method = detail.get("mfa")
    if method in MFA_METHODS:
        note = gettext(MFA_METHODS[method])
    user = row.record_title or detail.get("username") or ""
    return {
        "id": row.id,
        "time": row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        "user": user,
        "outcome": outcome,
        "outcome_text": action_label(row.action),
        "action": row.action,
        "note": note,
        "by": row.actor_name if row.actor_name and row.actor_name != user else "",
        "ip": row.client_ip or "",
        "agent": detail.get("agent") or "",
        "source": "API" if row.source == "api" or detail.get("via") == "api" else "Web",
    }


def query_log(filters: LogFilters, page: int | None = 0) -> tuple[list[dict[str, Any]], int]:
    """Return (rows newest first, total) for `filters`; `page=None` returns every row."""
    table = state().models.system["audit_log"]
    clauses = filters.where(table)
    query = sa.select(table).where(*clauses).order_by(table.c.id.desc())
    if page is not None:
        query = query.limit(PAGE_SIZE).offset(page * PAGE_SIZE)
    with state().db.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*clauses)
                             ).scalar_one()
        rows = [entry_row(r) for r in conn.execute(query)]
    return rows, total


EXPORT_COLUMNS = (
    ("time", N_("Time (UTC)")), ("user", N_("User")), ("outcome_text", N_("Outcome")),
    ("note", N_("Reason")), ("by", N_("By")), ("ip", N_("Client IP")),
    ("agent", N_("Browser")), ("source", N_("Source")), ("id", N_("Audit entry")),
)


def export_csv(filters: LogFilters) -> Response:
    """The filtered log as CSV (the console's CSV writer); the export is itself audited."""
    from app.audit.capture import record_event
    from app.io.exporter import csv_chunks
    from app.io.importer import neutralise

    rows, total = query_log(filters, page=None)
    head = [gettext(label) for _, label in EXPORT_COLUMNS]
    cells = ([neutralise(row[key]) for key, _ in EXPORT_COLUMNS] for row in reversed(rows))
    data = b"".join(chunk for chunk, _ in csv_chunks(head, cells))
    record_event("export", entity="audit_log", title="login_log.csv",
                 detail={"view": "login_log", "format": "csv", "rows": total,
                         "filters": filters.as_dict()})
    return Response(data, mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": "attachment; filename=login_log.csv"})


def make_login_log_view() -> type:
    """Return the page /security/login-log/ (admins and whoever may read the audit log)."""
    from flask_appbuilder import BaseView, expose
    from flask_appbuilder.security.decorators import has_access

    class LoginLogView(BaseView):
        route_base = "/security/login-log"
        default_view = "index"
        class_permission_name = "audit_log"
        method_permission_name = {"index": "read", "export": "export"}
        base_permissions = ["can_read", "can_export"]

        @expose("/")
        @has_access
        def index(self) -> str:
            filters = LogFilters.from_args(request.args)
            page = max(0, request.args.get("page", 0, type=int))
            rows, total = query_log(filters, page)
            pages = max(1, -(-total // PAGE_SIZE))
            return self.render_template(
                "security/login_log.html", rows=rows, total=total, page=page, pages=pages,
                filters=filters, args=filters.as_dict(),
                outcomes={k: gettext(label) for k, (label, _) in OUTCOMES.items()},
                can_export=self.appbuilder.sm.has_access("can_export", "audit_log"),
            )

        @expose("/export.csv")
        @has_access
        def export(self) -> Response:
            return export_csv(LogFilters.from_args(request.args))

    return LoginLogView
