"""The account security page (账号安全) and the second sign-in step.

/account/security shows the user's two-factor status and their own sessions;
enrolment shows the QR code (made locally by segno) and the secret as text and
switches the factor on only after a code from the app is confirmed. Every POST
carries the CSRF token (CSRFProtect is app-wide). Wrong codes count as failed
sign-ins, so the sign-in limits (app/security/login_limit.py) apply to them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, flash, make_response, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose
from flask_login import current_user

from app.i18n import N_, gettext
from app.security import mfa
from app.security.login_limit import blocked_response, record_failed_login
from app.security.login_log import record_auth_event


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """Every signed-in account may use its own security page; others go to the login page."""

    @wraps(view)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(self.appbuilder.get_url_for_login_with(request.full_path))
        return view(self, *args, **kwargs)

    return wrapper


def _wrong_code(reason_user: Any) -> None:
    """A wrong code: audited as a failed sign-in and counted towards the limits."""
    record_auth_event("login_failed", None,
                      {"username": reason_user.username, "reason": "wrong_code"})
    record_failed_login(reason_user.username)
    flash(gettext(N_("The code is wrong or was used already. Try the next code.")), "danger")


class MfaView(BaseView):
    """/account/…: security page, enrolment, second step, recovery codes, own sessions."""

    route_base = "/account"
    default_view = "security"

    def _page(self, template: str, **context: Any) -> Any:
        """Render a page; none is cached: they show secrets and one-time codes."""
        response = make_response(self.render_template(f"security/{template}", **context))
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/security")
    @signed_in
    def security(self) -> Any:
        from app.security.sessions_views import live_sessions

        if session.get(mfa.PENDING_KEY):
            return redirect(url_for("MfaView.verify"))
        uid = current_user.id
        return self._page("account.html", enrolled=mfa.is_enrolled(uid),
                          required=mfa.required_for(current_user),
                          recovery_left=mfa.recovery_left(uid), sessions=live_sessions(uid))

    # -- enrolment -----------------------------------------------------------

    @expose("/mfa/enrol")
    @signed_in
    def enrol(self) -> Any:
        if mfa.is_enrolled(current_user.id):
            return redirect(url_for("MfaView.security"))
        secret = mfa.start_enrolment(current_user.id)
        uri = mfa.provisioning_uri(secret, current_user.username)
        return self._page("mfa_enrol.html", secret=secret, qr=mfa.qr_data_uri(uri),
                          forced=session.get(mfa.PENDING_KEY) == "enrol")

    @expose("/mfa/confirm", methods=["POST"])
    @signed_in
    def confirm(self) -> Any:
        blocked = blocked_response(current_user.username)
        if blocked is not None:
            return blocked
        codes = mfa.confirm_enrolment(current_user.id, request.form.get("code", ""))
        if codes is None:
            _wrong_code(current_user)
            return redirect(url_for("MfaView.enrol"))
        record_auth_event("mfa_enabled", current_user)
        next_url = url_for("MfaView.security")
        if session.get(mfa.PENDING_KEY) == "enrol":
            next_url = mfa.complete_sign_in(current_user, "totp")
        return self._page("mfa_codes.html", codes=codes, next_url=next_url, new=True)

    # -- the second step of signing in ------------------------------------------

    @expose("/mfa/verify", methods=["GET", "POST"])
    @signed_in
    def verify(self) -> Any:
        if session.get(mfa.PENDING_KEY) != "verify":
            return redirect(url_for("MfaView.security"))
        if request.method == "POST":
            blocked = blocked_response(current_user.username)
            if blocked is not None:
                return blocked
            method = mfa.check_code(current_user.id, request.form.get("code", ""))
            if method is not None:
                if method == "recovery":
                    flash(gettext(N_("Recovery code used: %(left)d left."),
                                  left=mfa.recovery_left(current_user.id)), "warning")
                return redirect(mfa.complete_sign_in(current_user, method))
            _wrong_code(current_user)
        return self._page("mfa_verify.html")

    # -- managing an enabled factor ----------------------------------------------

    def _proved(self) -> bool:
        """The user proved it is them: a current code, or (to disable) the password."""
        if blocked_response(current_user.username) is not None:
            flash(gettext(N_("Too many wrong codes. Try again later.")), "danger")
            return False
        if mfa.check_code(current_user.id, request.form.get("code", "")):
            return True
        password = request.form.get("password", "")
        if password and request.endpoint == "MfaView.disable":
            from werkzeug.security import check_password_hash

            if check_password_hash(current_user.password or "", password):
                return True
        _wrong_code(current_user)
        return False

    @expose("/mfa/recovery", methods=["POST"])
    @signed_in
    def codes(self) -> Any:
        if session.get(mfa.PENDING_KEY) or not mfa.is_enrolled(current_user.id):
            abort(404)
        if not self._proved():
            return redirect(url_for("MfaView.security"))
        codes = mfa.regenerate_recovery_codes(current_user.id)
        record_auth_event("mfa_recovery_codes", current_user)
        return self._page("mfa_codes.html", codes=codes, next_url=url_for("MfaView.security"),
                          new=False)

    @expose("/mfa/disable", methods=["POST"])
    @signed_in
    def disable(self) -> Any:
        if session.get(mfa.PENDING_KEY) or not mfa.is_enrolled(current_user.id):
            abort(404)
        if mfa.required_for(current_user):
            flash(gettext(N_("Your role requires two-factor sign-in; it cannot be switched off.")),
                  "danger")
            return redirect(url_for("MfaView.security"))
        if self._proved():
            mfa.disable(current_user.id)
            record_auth_event("mfa_disabled", current_user)
            flash(gettext(N_("Two-factor sign-in is off.")), "success")
        return redirect(url_for("MfaView.security"))

    # -- own sessions --------------------------------------------------------------

    @expose("/sessions/<int:session_id>/end", methods=["POST"])
    @signed_in
    def end_session(self, session_id: int) -> Any:
        from app.security.sessions_views import end_session

        if not end_session(session_id, owner_id=current_user.id):
            abort(404)
        flash(gettext(N_("The session was ended; that browser is signed out.")), "success")
        return redirect(url_for("MfaView.security"))

    @expose("/sessions/end-others", methods=["POST"])
    @signed_in
    def end_others(self) -> Any:
        from app.security.sessions_views import end_other_sessions

        count = end_other_sessions(current_user)
        flash(gettext(N_("%(count)d other sessions were signed out."), count=count), "success")
        return redirect(url_for("MfaView.security"))
