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


def state() -> AppState:
    """Return the SchemaDesk state of the current app."""
    return current_app.extensions["schemadesk"]
