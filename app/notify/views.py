"""The notification centre (通知中心): /notifications/, its JSON API, the bell's count.

Every signed-in user sees their own notifications only, newest first; a row
links to its record only while the reader may still read that record.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, g, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.api import BaseApi
from flask_login import current_user

from app.i18n import N_, current_lang, gettext
from app.models import utcnow
from app.notify.center import (
    notification_text,
    readable_records,
    record_path,
    remember_language,
    unread_count,
)
from app.records.display import format_datetime

PAGE = 50


def _table() -> sa.Table:
    from app.state import state

    return state().models.system["notification"]


def _session() -> Any:
    from app.state import state

    return state().db.session


def page_of(user: Any, page: int = 1, unread_only: bool = False) -> list[dict[str, Any]]:
    """One page of the user's notifications as display dicts (text in the reader's language)."""
    table = _table()
    stmt = (sa.select(table).where(table.c.user_id == user.id)
            .order_by(table.c.id.desc()).limit(PAGE).offset((max(page, 1) - 1) * PAGE))
    if unread_only:
        stmt = stmt.where(table.c.read_at.is_(None))
    rows = list(_session().execute(stmt).mappings())
    found = readable_records(user, rows)
    lang = current_lang()
    out = []
    for row in rows:
        record = found.get((row["entity"] or "", int(row["record_id"] or 0)))
        out.append({
            "id": row["id"],
            "text": notification_text(row, lang, record),
            "entity": row["entity"],
            "record_id": row["record_id"],
            "url": record_path(row["entity"], row["record_id"]) if record is not None else None,
            "created_at": _when(row["created_at"]),
            "created_local": format_datetime(row["created_at"]),
            "read": row["read_at"] is not None,
        })
    return out


def _when(value: dt.datetime | None) -> str | None:
    return value.isoformat(sep=" ", timespec="minutes") if value else None


def mark_read(user_id: int, notification_id: int | None = None) -> int:
    """Mark one (or every) unread notification of the user read; return how many."""
    table = _table()
    stmt = (sa.update(table).where(table.c.user_id == user_id)
            .where(table.c.read_at.is_(None)).values(read_at=utcnow()))
    if notification_id is not None:
        stmt = stmt.where(table.c.id == notification_id)
    done = _session().execute(stmt).rowcount
    _session().commit()
    return int(done or 0)


def _signed_in() -> Any:
    if not current_user.is_authenticated:
        return None
    return current_user


class NotificationsView(BaseView):
    """/notifications/: the signed-in user's own notifications; mark read (POST)."""

    route_base = "/notifications"
    default_view = "index"

    @expose("/")
    def index(self) -> Any:
        user = _signed_in()
        if user is None:
            return redirect(url_for(current_app.appbuilder.sm.auth_view.endpoint + ".login"))
        page = request.args.get("page", 1, type=int) or 1
        items = page_of(user, page)
        return self.render_template(
            "notify/list.html", items=items, page=page, more=len(items) == PAGE,
            unread=unread_count(user.id), title=gettext(N_("Notifications")))

    @expose("/<int:notification_id>/read", methods=["POST"])
    def read_one(self, notification_id: int) -> Any:
        user = _signed_in()
        if user is None:
            abort(401)
        mark_read(user.id, notification_id)
        return redirect(request.form.get("next") or url_for("NotificationsView.index"))

    @expose("/read-all", methods=["POST"])
    def read_all(self) -> Any:
        user = _signed_in()
        if user is None:
            abort(401)
        mark_read(user.id)
        return redirect(url_for("NotificationsView.index"))


def _api_user() -> Any:
    """The caller: a browser session, else a bearer token (JWT) like the entity APIs."""
    if current_user.is_authenticated:
        return current_user
    from flask_jwt_extended import verify_jwt_in_request

    try:
        verify_jwt_in_request()
    except Exception:  # noqa: BLE001 - no or bad token: not signed in
        return None
    return getattr(g, "user", None)


class NotificationsApi(BaseApi):
    """GET /api/v1/notifications/ (own, newest first); POST …/<id>/read, …/read-all."""

    resource_name = "notifications"
    openapi_spec_tag = "Notifications"

    @expose("/", methods=["GET"])
    def list_own(self) -> Any:
        """The caller's notifications, newest first (?page=, ?unread=1).
        ---
        get:
          description: The signed-in user's notifications (通知), newest first.
          responses:
            200:
              description: unread count and one page of notifications
            401:
              description: not signed in
        """
        user = _api_user()
        if user is None:
            return self.response_401()
        page = request.args.get("page", 1, type=int) or 1
        unread_only = request.args.get("unread") in ("1", "true")
        return jsonify({"unread": unread_count(user.id),
                        "result": page_of(user, page, unread_only)})

    @expose("/<int:notification_id>/read", methods=["POST"])
    def read_one(self, notification_id: int) -> Any:
        """Mark one notification read.
        ---
        post:
          responses:
            200:
              description: how many were marked
        """
        user = _api_user()
        if user is None:
            return self.response_401()
        return jsonify({"marked": mark_read(user.id, notification_id)})

    @expose("/read-all", methods=["POST"])
    def read_all(self) -> Any:
        """Mark every notification read.
        ---
        post:
          responses:
            200:
              description: how many were marked
        """
        user = _api_user()
        if user is None:
            return self.response_401()
        return jsonify({"marked": mark_read(user.id)})


def _remember_lang(response: Any) -> Any:
    """After /lang/<code>: store the choice for the signed-in user (e-mails use it)."""
    locale_view = current_app.appbuilder.bm.locale_view  # type: ignore[attr-defined]
    endpoint = f"{locale_view.endpoint}.{locale_view.default_view}" if locale_view else None
    if request.endpoint == endpoint and current_user.is_authenticated:
        lang = (request.view_args or {}).get("locale")
        if lang:
            try:
                remember_language(current_user.id, lang)
            except Exception:  # noqa: BLE001 - a lost preference must not break the switch
                _session().rollback()
    return response


def _restore_lang(_app: Any, user: Any) -> None:
    """At sign-in, a browser without a language choice gets the user's remembered one."""
    from flask import session

    from app.notify.center import stored_language

    if session.get("locale") is None:
        lang = stored_language(user.id)
        if lang:
            session["locale"] = lang


def _bell_count() -> dict[str, Any]:
    def sd_unread_notifications() -> int:
        if not current_user.is_authenticated:
            return 0
        return unread_count(current_user.id)

    return {"sd_unread_notifications": sd_unread_notifications}


def init_notify(app: Any, appbuilder: Any) -> None:
    """Init hook: the centre, its API, the bell, language memory, job kinds, schedules."""
    from app.notify import mail, reminders, webhooks

    appbuilder.add_view_no_menu(NotificationsView())
    appbuilder.add_api(NotificationsApi)
    app.after_request(_remember_lang)
    app.context_processor(_bell_count)
    from flask_login import user_logged_in

    user_logged_in.connect(_restore_lang, app)
    mail.register()
    reminders.init_app(app, appbuilder)
    webhooks.init_app(app, appbuilder)
