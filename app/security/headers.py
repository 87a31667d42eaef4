"""Hardening: security headers with a per-request CSP nonce, CSRF, the password policy.

FAB's templates mark every script with `nonce="{{ baselib.get_nonce() }}"`,
which calls a `csp_nonce()` Jinja global when one exists; we provide it, so the
CSP can forbid every inline script but the ones the page itself rendered.

CSRF: Flask-WTF's `CSRFProtect` is registered app-wide and checked here, once,
for every unsafe method. The REST API is exempt only when the caller presents a
bearer token (a browser cannot attach one cross-site); API calls that ride on
the browser's session cookie (FAB's `allow_browser_login`) need `X-CSRFToken`.
Registering it also makes FAB refuse GET deletes (`is_get_mutation_allowed`).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request, session
from flask_appbuilder.exceptions import PasswordComplexityValidationError
from flask_wtf.csrf import CSRFError, CSRFProtect

from app.i18n import N_, gettext

MIN_PASSWORD_LENGTH = 10
COMMON_PASSWORDS = {"password", "password1", "12345678", "123456789", "1234567890",
                    "qwertyuiop", "admin12345", "changeme123", "iloveyou12"}


def csp_nonce() -> str:
    """Return this request's CSP nonce (created on first use)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def content_security_policy(nonce: str) -> str:
    """Return the CSP: our own origin only, scripts by nonce, no framing."""
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def password_policy(password: str) -> None:
    """Raise PasswordComplexityValidationError unless `password` is strong enough.

    At least 10 characters, with letters and digits, and not a well-known one.
    """
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise PasswordComplexityValidationError(
            gettext(N_("The password must have at least %(n)d characters."),
                    n=MIN_PASSWORD_LENGTH)
        )
    if not re.search(r"[A-Za-z]", password) or not re.search(r"[0-9]", password):
        raise PasswordComplexityValidationError(
            gettext(N_("The password must contain letters and digits."))
        )
    if password.lower() in COMMON_PASSWORDS:
        raise PasswordComplexityValidationError(
            gettext(N_("This password is too common."))
        )


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_exempt_request() -> bool:
    """Whether this request needs no CSRF token.

    Safe methods never do. An API call does not when it carries a bearer token,
    or when no signed-in session cookie came with it (nothing ambient to abuse:
    e.g. a script posting to /api/v1/security/login).
    """
    if request.method not in UNSAFE_METHODS:
        return True
    if not request.path.startswith("/api/"):
        return False
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return True
    return "_user_id" not in session


def init_csrf(app: Flask, appbuilder: Any) -> CSRFProtect:
    """Register CSRFProtect app-wide and check every unsafe request (but bearer API calls)."""
    csrf = CSRFProtect(app)

    @app.before_request
    def _csrf_protect() -> None:
        if app.config.get("WTF_CSRF_ENABLED", True) and not csrf_exempt_request():
            csrf.protect()

    @app.errorhandler(CSRFError)
    def _csrf_failed(error: CSRFError) -> tuple[Any, int]:
        message = gettext(N_("This form has expired or did not come from this console. "
                             "Go back, reload the page and try again."))
        if request.path.startswith("/api/"):
            return jsonify(message=message), 400
        body = render_template("schemadesk/message.html", title=gettext(N_("Request refused")),
                               message=message, base_template=appbuilder.base_template,
                               appbuilder=appbuilder)
        return body, 400

    return csrf


def init_security(app: Flask, appbuilder: Any) -> None:
    """Init hook: headers on every response, nonce global, CSRF, password policy."""
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.config.setdefault("FAB_PASSWORD_COMPLEXITY_VALIDATOR", password_policy)
    init_csrf(app, appbuilder)
    from app.security.login_limit import init_login_limit
    from app.security.params import init_params
    from app.security.sessions import init_sessions

    init_login_limit(app, appbuilder)
    init_params(app, appbuilder)
    init_sessions(app, appbuilder)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", content_security_policy(csp_nonce()))
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config.get("SESSION_COOKIE_SECURE"):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
