"""/webhooks/: the delivery log admins read and re-send from (never secrets or bodies)."""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_login import current_user

from app.i18n import N_, current_lang, gettext
from app.records.display import format_datetime

PAGE = 100
STATUS_LABELS = {"pending": N_("Pending"), "retrying": N_("Retrying"), "ok": N_("Delivered"),
                 "failed": N_("Failed")}


def _admin_only() -> Any:
    from app.records.scope import is_admin

    if not current_user.is_authenticated:
        return redirect(url_for(current_app.appbuilder.sm.auth_view.endpoint + ".login"))
    if not is_admin(current_user):
        abort(403)
    return None


def deliveries(page: int = 1, hook: str | None = None) -> list[dict[str, Any]]:
    """One page of the delivery log, newest first (what the page shows, no body)."""
    from app.state import state

    table = state().models.system["webhook_delivery"]
    columns = [table.c[n] for n in ("id", "delivery_id", "hook", "event", "entity", "record_id",
                                    "url", "status", "status_code", "attempts", "last_error",
                                    "body_hash", "created_at", "last_attempt_at")]
    stmt = sa.select(*columns).order_by(table.c.id.desc()).limit(PAGE).offset(
        (max(page, 1) - 1) * PAGE)
    if hook:
        stmt = stmt.where(table.c.hook == hook)
    rows = []
    labels = {e.name: e.label.get(current_lang()) for e in state().spec.entities}
    for row in state().db.session.execute(stmt).mappings():
        item = dict(row)
        item["entity_label"] = labels.get(row["entity"], row["entity"])
        item["created_local"] = format_datetime(row["created_at"])
        item["status_label"] = gettext(STATUS_LABELS.get(row["status"], row["status"]))
        rows.append(item)
    return rows


class WebhooksView(BaseView):
    """The webhook delivery log (Admin only): status, attempts, last error; re-send."""

    route_base = "/webhooks"
    default_view = "index"

    @expose("/")
    def index(self) -> Any:
        refused = _admin_only()
        if refused is not None:
            return refused
        from app.state import state

        page = request.args.get("page", 1, type=int) or 1
        lang = current_lang()
        hooks = [{"name": h.name, "entity": state().spec.entity(h.entity).label.get(lang),
                  "events": ", ".join(h.events),
                  "url": h.url, "secret_env": h.secret_env,
                  "active": bool(os.environ.get(h.secret_env))}
                 for h in state().spec.webhooks]
        items = deliveries(page, request.args.get("hook") or None)
        return self.render_template("notify/webhooks.html", items=items, hooks=hooks,
                                    page=page, more=len(items) == PAGE,
                                    title=gettext(N_("Webhooks")))

    @expose("/<delivery_id>/resend", methods=["POST"])
    def resend(self, delivery_id: str) -> Any:
        refused = _admin_only()
        if refused is not None:
            return refused
        from app.notify.webhooks import resend

        resend(delivery_id)
        flash(gettext(N_("Delivery %(id)s queued again."), id=delivery_id[:8]), "info")
        return redirect(url_for("WebhooksView.index"))


def register(appbuilder: Any) -> None:
    """Add the page (no menu entry for non-admins: it is linked from the admin menu)."""
    appbuilder.add_view_no_menu(WebhooksView())
