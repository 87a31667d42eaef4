"""Who is acting right now: the signed-in user, or the CLI/job that acts.

Web requests take the actor from Flask-Login; the CLI and jobs set it with
`acting_as(...)`. Models (created_by), the audit log and row rules all ask here.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from flask import g, has_request_context, request


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    name: str
    source: str  # ui | api | cli | job | system
    client_ip: str | None = None
    request_id: str | None = None


_override: ContextVar[Actor | None] = ContextVar("schemadesk_actor", default=None)


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Run the block with `actor` as the current actor (CLI, jobs, restore)."""
    token = _override.set(actor)
    try:
        yield actor
    finally:
        _override.reset(token)


def request_id() -> str | None:
    """Return this request's id (X-Request-Id, else a new one), or None outside a request."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    return g.request_id


def current_actor() -> Actor:
    """Return the actor for the current context (never raises)."""
    override = _override.get()
    if override is not None:
        return override
    if has_request_context():
        source = "api" if request.path.startswith("/api/") else "ui"
        # The socket's peer, or what the trusted proxies said (PROXY_COUNT, ProxyFix);
        # a client's own X-Forwarded-For is never believed.
        ip = request.remote_addr or None
        user = None
        try:
            from flask_login import current_user

            if current_user and current_user.is_authenticated:
                user = current_user
        except Exception:  # outside a fully set-up app
            user = None
        if user is None and getattr(g, "user", None) is not None:
            user = g.user if getattr(g.user, "is_authenticated", False) else None
        if user is not None:
            return Actor(user.id, user.username, source, ip, request_id())
        return Actor(None, "anonymous", source, ip, request_id())
    return Actor(None, "system", "system")
