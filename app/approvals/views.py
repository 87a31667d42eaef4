"""The approvals inbox (我的审批, /approvals/): what waits for me, what I submitted.

Approve and reject are POST forms (CSRF-protected like every form); the
decision itself is `service.decide`, which checks who may decide. The top
bar's badge (`approvals/_nav.html`) asks `pending_count`: one indexed count.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_login import current_user

from app.approvals import service
from app.i18n import N_, current_lang, gettext
from app.records.service import NotFound, RecordError


def signed_in(func: Any) -> Any:
    """Let in signed-in users only (everyone may have requests waiting for them)."""
    import functools

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for(current_app.appbuilder.sm.auth_view.endpoint + ".login"))
        return func(self, *args, **kwargs)

    return wrapper


class ApprovalsView(BaseView):
    """我的审批: the pending requests for the signed-in user and the ones they submitted."""

    route_base = "/approvals"
    default_view = "inbox"

    @expose("/")
    @signed_in
    def inbox(self) -> Any:
        lang = current_lang()
        return self.render_template(
            "approvals/inbox.html", title=gettext(N_("My approvals")),
            waiting=service.inbox(current_user.id, lang),
            mine=service.submitted(current_user.id, lang))

    @expose("/<int:request_id>/<decision>", methods=["POST"])
    @signed_in
    def decide(self, request_id: int, decision: str) -> Any:
        """Approve or reject from the inbox (form field `comment`); back to where it came from."""
        if decision not in service.DECISIONS:
            abort(404)
        try:
            view = service.decide(request_id, decision, request.form.get("comment"),
                                  current_user)
        except NotFound:
            abort(404)
        except RecordError as exc:
            flash(exc.message, "danger")
        else:
            message = N_("Approved: %(record)s.") if decision == "approve" \
                else N_("Rejected: %(record)s.")
            flash(gettext(message, record=view["record_title"]), "success")
        target = request.form.get("next") or ""
        if not target.startswith("/") or target.startswith("//"):
            target = url_for("ApprovalsView.inbox")
        return redirect(target)


def register(app: Any, appbuilder: Any) -> None:
    """Add the inbox and the template helpers (badge count, record history)."""
    appbuilder.add_view_no_menu(ApprovalsView())

    @app.context_processor
    def approval_helpers() -> dict[str, Any]:
        return {"sd_approvals_pending": _badge_count,
                "sd_approval_history": _record_history}


def _badge_count() -> int:
    if not current_user.is_authenticated:
        return 0
    return service.pending_count(current_user.id)


def _record_history(entity: str, record_id: Any) -> dict[str, Any]:
    """What the show page's approval panel needs: history, and my open decision if any."""
    from app.state import state

    names = {e.name for e in state().spec.entities}
    try:
        pk = int(record_id)
    except (TypeError, ValueError):
        return {"requests": [], "mine": None}
    if entity not in names:
        return {"requests": [], "mine": None}
    requests = service.history(entity, pk, current_lang())
    mine = None
    if current_user.is_authenticated:
        mine = next((r for r in service.inbox(current_user.id, current_lang())
                     if r["entity"] == entity and r["record_id"] == pk), None)
    return {"requests": requests, "mine": mine}
