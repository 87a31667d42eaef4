"""SchemaDesk: a low-code admin console over a data-first YAML schema.

`create_app(config)` builds everything; importing this package does no work.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask, Response, has_request_context, render_template, request, session
from sqlalchemy import event
from sqlalchemy.engine import Engine

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
        cur.close()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the SchemaDesk Flask app for the schema and database in `config`."""
    from flask_appbuilder import AppBuilder
    from flask_sqlalchemy import SQLAlchemy

    from app.models import build_models
    from app.schema import load_spec
    from app.state import AppState

    # FAB's own user screens declare filters it cannot build; the warning is noise.
    logging.getLogger("flask_appbuilder.models.filters").setLevel(logging.ERROR)
    settings = load_config(config)
    settings["SQLALCHEMY_DATABASE_URI"] = _normalise_url(settings["SQLALCHEMY_DATABASE_URI"])
    spec = load_spec(settings["SCHEMA_PATH"])

    app = Flask(__name__, instance_path=settings["INSTANCE_PATH"])
    app.config.update(settings)
    # `/` sends signed-in users to the dashboard (app/charts/views.py).
    app.config.setdefault("FAB_INDEX_VIEW", "app.charts.views.HomeView")
    app.config["APP_NAME"] = spec.title.get(spec.default_locale)
    app.config["BABEL_DEFAULT_LOCALE"] = settings.get("BABEL_DEFAULT_LOCALE") or (
        "zh" if spec.default_locale == "zh" else "en"
    )
    app.config["LANGUAGES"] = {
        "zh": {"flag": "cn", "name": "中文"},
        "en": {"flag": "gb", "name": "English"},
    }
    if settings["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})

    models = build_models(spec)
    db = SQLAlchemy(metadata=models.metadata)
    db.init_app(app)
    app.extensions["schemadesk"] = AppState(spec=spec, models=models, db=db)

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
        from app.views import register_views

        register_views(appbuilder)
        for hook in _service_hooks():
            hook(app, appbuilder)

    _install_schema_guard(app)
    return app


def _service_hooks() -> list[Any]:
    """Return the init hooks of the services beside the data path."""
    from app import hooks

    return hooks.ALL


def _install_locale_selector(app: Flask) -> None:
    """Locale: the user's choice (/lang/<zh|en>), else Accept-Language, else schema."""
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


def _install_schema_guard(app: Flask) -> None:
    """A database that doesn't match the schema gets a clear page, not a 500."""
    from app.migrate import pending_changes
    from app.state import state

    @app.before_request
    def _check_schema() -> Response | None:
        st = state()
        if st.schema_mismatch is None:
            try:
                st.schema_mismatch = pending_changes()
            except Exception as exc:  # database unreachable: say so plainly
                st.schema_mismatch = [str(exc).splitlines()[0]]
        if st.schema_mismatch and not request.path.startswith("/static"):
            body = render_template("schemadesk/schema_mismatch.html", changes=st.schema_mismatch)
            return Response(body, status=503)
        return None
