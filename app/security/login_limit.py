"""Sign-in limits (登录失败限制): failed sign-ins per account and per client address.

Only failures count, on the web form (`/login/`) and the API
(`POST /api/v1/security/login`) alike: a colleague signing in correctly never
uses up the office's allowance. Once an account, or a client address, has
`AUTH_RATE_LIMIT` failures in the window, further sign-ins to it (even with the
right password) get 429 until the window moves on. Counters live in the
Flask-Limiter storage (`RATELIMIT_STORAGE_URI`: Redis when `REDIS_URL` is set,
so every web node shares them; memory otherwise). `RATELIMIT_ENABLED=False` or
`AUTH_RATE_LIMITED=False` switch it off.
"""

from __future__ import annotations

import math
import time
from typing import Any

from flask import (
    Flask,
    Response,
    current_app,
    has_request_context,
    jsonify,
    render_template,
    request,
)
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.i18n import N_, gettext

EXTENSION = "schemadesk_login_limit"


class LoginLimiter:
    """Counts failed sign-ins by account and by client address in the limiter storage."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        self.per_account: RateLimitItem = parse(config["AUTH_RATE_LIMIT"])
        self.per_address: RateLimitItem = parse(
            config.get("AUTH_RATE_LIMIT_PER_IP") or config["AUTH_RATE_LIMIT"]
        )
        storage = storage_from_string(
            config.get("RATELIMIT_STORAGE_URI") or "memory://",
            **(config.get("RATELIMIT_STORAGE_OPTIONS") or {}),
        )
        self.strategy = MovingWindowRateLimiter(storage)
        self.prefix = config.get("RATELIMIT_KEY_PREFIX") or "schemadesk"

    def _counters(self, username: str) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
        address = request.remote_addr or "unknown"
        account = username.strip().lower()[:255]
        return [
            (self.per_account, (self.prefix, "login-failed", "account", account)),
            (self.per_address, (self.prefix, "login-failed", "address", address)),
        ]

    def seconds_blocked(self, username: str) -> int:
        """Seconds until `username` may try again from this address (0: now)."""
        waits = []
        for item, keys in self._counters(username):
            if not self.strategy.test(item, *keys):
                reset = self.strategy.get_window_stats(item, *keys).reset_time
                waits.append(min(item.get_expiry(), max(1, math.ceil(reset - time.time()))))
        return max(waits, default=0)

    def record_failure(self, username: str) -> None:
        """Count one failed sign-in for the account and for the client address."""
        for item, keys in self._counters(username):
            self.strategy.hit(item, *keys)


def enabled(app: Flask) -> bool:
    return bool(app.config.get("RATELIMIT_ENABLED", True) and app.config.get("AUTH_RATE_LIMITED"))


def record_failed_login(username: Any) -> None:
    """Called by the security manager when a sign-in fails (no-op when limits are off)."""
    if not has_request_context() or not enabled(current_app):
        return
    limiter = current_app.extensions.get(EXTENSION)
    if limiter is not None:
        limiter.record_failure(str(username or ""))


def blocked_response(username: str) -> Response | None:
    """The 429 answer if `username` has used up its failures from here (the 2FA steps ask)."""
    limiter = current_app.extensions.get(EXTENSION)
    if limiter is None or not enabled(current_app):
        return None
    seconds = limiter.seconds_blocked(username)
    return _too_many(current_app.appbuilder, seconds) if seconds else None


def _attempted_username() -> str:
    if request.is_json:
        body = request.get_json(silent=True)
        return str(body.get("username") or "") if isinstance(body, dict) else ""
    return request.form.get("username", "")


def _too_many(appbuilder: Any, seconds: int) -> Response:
    minutes = max(1, math.ceil(seconds / 60))
    message = gettext(
        N_("Too many failed sign-ins. Try again in %(minutes)d minutes."), minutes=minutes
    )
    if request.path.startswith("/api/"):
        response = jsonify(message=message)
    else:
        response = Response(render_template(
            "schemadesk/message.html", title=gettext(N_("Sign-in blocked for now")),
            message=message, back_url=request.path,
            base_template=appbuilder.base_template, appbuilder=appbuilder,
        ))
    response.status_code = 429
    response.headers["Retry-After"] = str(seconds)
    return response


def init_login_limit(app: Flask, appbuilder: Any) -> None:
    """Refuse sign-ins (web and API) to accounts or addresses with too many failures.

    FAB's own limiter on the login view counts every attempt, successful or
    not, and only per address, so it is switched off in the security manager.
    """
    app.extensions[EXTENSION] = LoginLimiter(app)
    sm = appbuilder.sm
    endpoints = {f"{sm.auth_view.endpoint}.login", "SecurityApi.login"}

    @app.before_request
    def _refuse_blocked_sign_in() -> Response | None:
        if request.method != "POST" or request.endpoint not in endpoints or not enabled(app):
            return None
        username = _attempted_username()
        seconds = app.extensions[EXTENSION].seconds_blocked(username)
        if not seconds:
            return None
        from app.security.login_log import record_auth_event

        record_auth_event("login_failed", None,
                          {"username": username[:255], "reason": "locked_out"})
        return _too_many(appbuilder, seconds)
