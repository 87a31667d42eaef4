"""The hot reload: a thin WSGI dispatcher that swaps in an app built for a newer schema.

Flask cannot add blueprints, models or views to a running app, so a new schema
version needs a new app. `SchemaReloader` owns the current Flask app; at most
once per `interval` seconds a request reads `max(number)` of `schema_version`
(one indexed statement) and, when it differs from the number the app was built
on, the next requests wait while one of them builds the new app (create_app
reads the newest version itself) and swaps it in. Requests already running
finish on the old app, which is released (listeners detached, connections closed)
when the last of them ends. A request that waits longer than `wait` seconds gets a
translated 503 with Retry-After, never a 500. A build that fails (logged) keeps
the old app and is retried after `retry` seconds. The SECRET_KEY comes from the
same config, so sessions and cookies stay valid across the swap.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from flask import Flask
from werkzeug.wsgi import ClosingIterator

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 2


class SchemaReloader:
    """WSGI callable serving the app of the newest schema version (gunicorn: `app:wsgi()`)."""

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        interval: float = 1.0,
        wait: float = 25.0,
        retry: float = 30.0,
        app: Flask | None = None,
    ) -> None:
        from app import create_app

        self.interval = interval
        self.wait = wait
        self.retry = retry
        self._app = app or create_app(dict(config or {}))
        # Rebuilds use the config the app was made with (run.py's: the environment).
        self.config = dict(config if config is not None
                           else self._app.extensions["schemadesk"].build_config)
        self._number = _seed(self._app)
        url = self._app.config["SQLALCHEMY_DATABASE_URI"]
        self._probe = sa.create_engine(url, poolclass=sa.pool.NullPool) if url.startswith(
            "sqlite") else sa.create_engine(url, pool_size=1, max_overflow=2, pool_pre_ping=True)
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._pending: int | None = None
        self._failed: dict[int, float] = {}
        self.swaps = 0
        # Requests running per app, and the swapped-out apps waiting for theirs to end.
        self._running: dict[Flask, int] = {}
        self._retiring: list[Flask] = []
        self._released: weakref.WeakSet[Flask] = weakref.WeakSet()
        self._count_lock = threading.Lock()

    @property
    def app(self) -> Flask:
        """The app requests are served by now."""
        return self._app

    @property
    def number(self) -> int | None:
        """The schema version the current app was built on."""
        return self._number

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        app = self.current()
        while app is not None and not self._enter(app):
            app = self.current()  # swapped and released between the two: take the new one
        if app is None:
            return self._updating(environ, start_response)
        try:
            body = app(environ, start_response)
        except BaseException:
            self._leave(app)
            raise
        return ClosingIterator(body, lambda: self._leave(app))

    @property
    def retiring(self) -> int:
        """Swapped-out apps still finishing requests."""
        return len(self._retiring)

    def _enter(self, app: Flask) -> bool:
        """Count a request on `app`; False if `app` was already released."""
        with self._count_lock:
            if app in self._released:
                return False
            self._running[app] = self._running.get(app, 0) + 1
            return True

    def _leave(self, app: Flask) -> None:
        with self._count_lock:
            left = self._running[app] = self._running[app] - 1
            done = left == 0 and app in self._retiring
            if done:
                self._retiring.remove(app)
                del self._running[app]
                self._released.add(app)
        if done:
            _retire(app)

    def _put_aside(self, old: Flask) -> None:
        """Release the swapped-out app now if idle, else when its last request ends."""
        with self._count_lock:
            busy = self._running.get(old, 0) > 0
            if busy:
                self._retiring.append(old)
            else:
                self._running.pop(old, None)
                self._released.add(old)
        if not busy:
            _retire(old)

    def current(self) -> Flask | None:
        """The app for this request, swapped first if a newer version appeared; None: building."""
        now = time.monotonic()
        if self._pending is None and now - self._checked >= self.interval:
            self._checked = now
            self._notice(now)
        if self._pending is None:
            return self._app
        if not self._lock.acquire(timeout=self.wait):
            return None
        try:
            if self._pending is not None:
                self._swap(self._pending)
            return self._app
        finally:
            self._lock.release()

    def check_now(self) -> bool:
        """Check and swap at once (workers, tests); True if the app changed."""
        before = self._app
        self._checked = 0.0
        self.current()
        return self._app is not before

    def _notice(self, now: float) -> None:
        from app.designer.versions import latest_number

        number = latest_number(self._probe)
        if number is None or number == self._number:
            return
        failed_at = self._failed.get(number)
        if failed_at is not None and now - failed_at < self.retry:
            return
        self._pending = number

    def _swap(self, number: int) -> None:
        """Build the app for the newest version and make it current; keep the old one on failure."""
        from app import create_app
        from app.state import state

        started = time.perf_counter()
        try:
            new = create_app(self.config)
            with new.app_context():
                built = state().schema_number
        except Exception:  # noqa: BLE001 - a broken build must not take the console down
            log.exception("could not build the app for schema version %s; still serving %s",
                          number, self._number)
            self._failed[number] = time.monotonic()
            self._pending = None
            return
        old, self._app, self._number = self._app, new, built
        self._pending = None
        self.swaps += 1
        log.warning("schema version %s is now served (was %s), built in %.1fs", built,
                    _number_of(old), time.perf_counter() - started)
        self._put_aside(old)

    def _updating(self, environ: dict[str, Any], start_response: Callable[..., Any]
                  ) -> Iterable[bytes]:
        """503 "updating, retry in a moment" in the reader's language (the old app translates)."""
        from flask import jsonify, render_template, request

        from app.i18n import N_, current_lang, gettext

        with self._app.request_context(environ):
            message = gettext(N_("The console is switching to a new schema version; retry in "
                                 "a moment."))
            if request.path.startswith("/api/"):
                response = jsonify(message=message)
            else:
                response = self._app.response_class(render_template(
                    "schemadesk/schema_updating.html", message=message, lang=current_lang(),
                    retry_after=RETRY_AFTER_SECONDS))
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response(environ, start_response)


def _seed(app: Flask) -> int | None:
    """Store the running schema as version 1 on first start; return the app's version number."""
    from app.designer.versions import seed_version
    from app.state import state

    with app.app_context():
        seed_version()
        return state().schema_number


def _number_of(app: Flask) -> int | None:
    return app.extensions["schemadesk"].schema_number


def _retire(app: Flask) -> None:
    """Release an app no request runs on any more: its listeners, models and connections."""
    from app.state import release

    try:
        release(app)
    except Exception:  # noqa: BLE001 - best effort: the new app is already serving
        log.warning("releasing the app of an older schema version failed", exc_info=True)


def make_wsgi(config: dict[str, Any] | None = None) -> SchemaReloader:
    """The WSGI entry: `gunicorn -w 4 "app:wsgi()"` (or "app.designer.reload:make_wsgi()")."""
    return SchemaReloader(config)
