"""SchemaDesk: a low-code admin console over a data-first YAML schema.

`create_app(config)` builds everything; importing this package does no work.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any

from flask import (
    Flask,
    Response,
    has_request_context,
    jsonify,
    render_template,
    request,
    session,
)
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from config import load_config


def _normalise_url(url: str) -> str:
    """Pick our drivers and utf8mb4 for MySQL/MariaDB URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("mysql://") or url.startswith("mariadb://"):
        url = "mysql+pymysql://" + url.split("://", 1)[1]
    if url.startswith("mysql+pymysql://") and "charset=" not in url:
        url += ("&" if "?" in url else "?") + "charset=utf8mb4"
    return url


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA journal_mode=WAL")
        # Freed space is zeroed: an erased subject's bytes do not linger in the file.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()


# The apps this process has built and not yet garbage-collected (a test run releases
# those it is done with: `app.state.release`).
BUILT: weakref.WeakSet[Flask] = weakref.WeakSet()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the SchemaDesk Flask app for the schema and database in `config`."""
    from flask_appbuilder import AppBuilder
    from flask_sqlalchemy import SQLAlchemy
    from flask_sqlalchemy.session import Session as FsaSession

    from app.designer.versions import startup_spec
    from app.models import build_models
    from app.state import AppState

    # FAB's own user screens declare filters it cannot build; the warning is noise.
    logging.getLogger("flask_appbuilder.models.filters").setLevel(logging.ERROR)
    settings = load_config(config)
    settings["SQLALCHEMY_DATABASE_URI"] = _normalise_url(settings["SQLALCHEMY_DATABASE_URI"])
    # The newest stored version (schema_version), else the SCHEMA_PATH file.
    spec, schema_text, schema_number = startup_spec(settings)

    app = Flask(__name__, instance_path=settings["INSTANCE_PATH"])
    app.config.update(settings)
    _trust_proxies(app, int(settings.get("PROXY_COUNT") or 0))
    # `/` sends signed-in users to the dashboard (app/charts/views.py).
    app.config.setdefault("FAB_INDEX_VIEW", "app.charts.views.HomeView")
    app.config["APP_NAME"] = spec.title.get(spec.default_locale)
    app.config["BABEL_DEFAULT_LOCALE"] = settings.get("BABEL_DEFAULT_LOCALE") or (
        "zh" if spec.default_locale == "zh" else "en"
    )
    # FAB's raw permission/view-menu screens list internal names (can_show on
    # SwaggerView); roles come from the YAML and the matrix page shows them.
    for key in ("FAB_ADD_SECURITY_PERMISSION_VIEW", "FAB_ADD_SECURITY_VIEW_MENU_VIEW",
                "FAB_ADD_SECURITY_PERMISSION_VIEWS_VIEW"):
        app.config.setdefault(key, False)
    app.config["LANGUAGES"] = {
        "zh": {"flag": "cn", "name": "中文"},
        "en": {"flag": "gb", "name": "English"},
    }
    if settings["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})

    models = build_models(spec)
    # A Session class of this app's own: the audit, rollup, webhook and chart-cache
    # listeners attach to it (a sessionmaker's events go to its class), so an app
    # rebuilt after a schema change, or the next app of a test run, neither runs the
    # old app's listeners nor keeps it alive through them.
    session_class = type("AppSession", (FsaSession,), {})
    db = SQLAlchemy(metadata=models.metadata, session_options={"class_": session_class})
    db.init_app(app)
    app.extensions["schemadesk"] = AppState(
        spec=spec, models=models, db=db, schema_text=schema_text, schema_number=schema_number,
        build_config=dict(config or {}),
    )

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _sqlite_pragmas(db.engine)
        if db.engine.dialect.name == "mysql":
            # FAB's security models name sequences; on MariaDB (which has them)
            # we use AUTO_INCREMENT like every other table, so ignore them. The
            # dialect sets the flag when it first connects, so connect first.
            with db.engine.connect():
                pass
            db.engine.dialect.supports_sequences = False
        from app.models.events import install_model_events

        install_model_events(db.session, models)
        from app.security.manager import SchemaDeskSecurityManager

        appbuilder = AppBuilder(
            app,
            db.session,
            security_manager_class=SchemaDeskSecurityManager,
            base_template="schemadesk/base.html",
        )
        _install_locale_selector(app)
        # Before the services' hooks: their before_request handlers may query.
        _install_schema_guard(app)
        from app.views import register_views

        register_views(appbuilder)
        for hook in _service_hooks():
            hook(app, appbuilder)

    BUILT.add(app)
    return app


def wsgi(config: dict[str, Any] | None = None) -> Any:
    """The WSGI entry for gunicorn: `gunicorn -w 4 "app:wsgi()"`.

    It serves the newest schema version and swaps in a rebuilt app when an
    admin applies a new one, without a restart (app/designer/reload.py).
    """
    from app.designer.reload import make_wsgi

    return make_wsgi(config)


def _trust_proxies(app: Flask, count: int) -> None:
    """Believe X-Forwarded-For/-Proto from exactly `count` reverse proxies (PROXY_COUNT).

    With 0 (the default) the headers are ignored: anyone can send them, so the
    client address is the socket's peer. Host and prefix are not taken from
    headers at all.
    """
    if count > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]


def _service_hooks() -> list[Any]:
    """Return the init hooks of the services beside the data path."""
    from app import hooks

    return hooks.ALL


def _install_locale_selector(app: Flask) -> None:
    """Locale: the user's choice (/lang/<zh|en>), else Accept-Language, else schema."""
    from app.i18n import install_template_gettext

    babel_config = app.extensions["babel"]

    def select_locale() -> str:
        if not has_request_context():
            # CLI, jobs and workers speak the terminal's language (LANG).
            lang = os.environ.get("SCHEMADESK_LANG") or os.environ.get("LANG") or ""
            return "zh_CN" if lang.lower().startswith("zh") else "en"
        chosen = session.get("locale")
        if chosen not in ("zh", "en"):
            chosen = request.accept_languages.best_match(["zh", "zh_CN", "en"])
            chosen = "zh" if chosen and chosen.startswith("zh") else chosen
        if chosen not in ("zh", "en"):
            chosen = app.config["BABEL_DEFAULT_LOCALE"]
        return "zh_CN" if chosen == "zh" else "en"

    babel_config.locale_selector = select_locale
    install_template_gettext(app)


DATABASE_ERRORS = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
RETRY_AFTER_SECONDS = 10
log = logging.getLogger(__name__)


def _database_unavailable() -> Response:
    """The 503 shown while the database cannot be reached (no driver text: that goes to the log)."""
    from app.i18n import N_, current_lang, gettext

    if request.path.startswith("/api/"):
        response = jsonify(message=gettext(N_("The database is unavailable; retry in a moment.")))
        response.status_code = 503
    else:
        body = render_template("schemadesk/db_unavailable.html", lang=current_lang(),
                               retry_after=RETRY_AFTER_SECONDS)
        response = Response(body, status=503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _install_schema_guard(app: Flask) -> None:
    """A database that doesn't match the schema, or can't be reached, gets a clear 503.

    Only "the schema matches" is remembered (`schema_mismatch == []`); an
    unreachable database or a mismatch is checked again on the next request, so
    the console recovers by itself once the database is back or migrated.
    """
    from app.migrate import pending_changes
    from app.state import state

    @app.before_request
    def _check_schema() -> Response | None:
        if request.path.startswith("/static"):
            return None
        st = state()
        if st.schema_mismatch == []:
            return None
        try:
            changes = pending_changes()
        except DATABASE_ERRORS as exc:
            log.warning("database unavailable: %s", exc)
            st.schema_mismatch = None
            return _database_unavailable()
        st.schema_mismatch = changes
        if changes:
            body = render_template("schemadesk/schema_mismatch.html", changes=changes)
            return Response(body, status=503)
        return None

    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.InterfaceError)
    @app.errorhandler(sa_exc.TimeoutError)
    def _database_lost(exc: Exception) -> Response:
        # The database went away after the check: check it again next time.
        log.error("database error during %s %s: %s", request.method, request.path, exc)
        state().schema_mismatch = None
        return _database_unavailable()
