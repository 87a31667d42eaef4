"""The per-application state every layer reaches through `state()`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_sqlalchemy import SQLAlchemy

from app.models import ModelSet
from app.schema.spec import AppSpec


@dataclass
class AppState:
    spec: AppSpec
    models: ModelSet
    db: SQLAlchemy
    views: dict[str, Any] = field(default_factory=dict)
    apis: dict[str, Any] = field(default_factory=dict)
    schema_mismatch: list[str] | None = None
    # The schema's text as written and its number in `schema_version` (None: the
    # file, not yet stored); `build_config` rebuilds the app for a newer version.
    schema_text: str = ""
    schema_number: int | None = None
    build_config: dict[str, Any] = field(default_factory=dict)


def state() -> AppState:
    """Return the SchemaDesk state of the current app."""
    return current_app.extensions["schemadesk"]


def listen(target: Any, identifier: str, fn: Any, **kw: Any) -> None:
    """`sqlalchemy.event.listen`, remembered by the current app so `release` can undo it."""
    from sqlalchemy import event

    event.listen(target, identifier, fn, **kw)
    current_app.extensions.setdefault("schemadesk_listeners", []).append(
        (target, identifier, fn))


def release(app: Any) -> None:
    """Detach the app's listeners and close its connections, for an app nobody will use
    again: the designer's reload calls it when the last request on a swapped-out app ends,
    the test suite when a module's apps are done."""
    from sqlalchemy import event

    for target, identifier, fn in app.extensions.pop("schemadesk_listeners", []):
        if event.contains(target, identifier, fn):
            event.remove(target, identifier, fn)
    st = app.extensions.get("schemadesk")
    if st is not None:
        with app.app_context():
            st.db.session.remove()
            for engine in st.db.engines.values():
                engine.dispose()
