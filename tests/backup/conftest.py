"""Backup fixtures: a seeded CRM app per backend, and empty targets to restore into."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CRM, new_database


@pytest.fixture
def empty_app(tmp_path: Path) -> Callable[..., Any]:
    """`empty_app(backend)` -> an app on a new database with no tables at all."""
    from app import create_app

    def make(backend: str, **config: Any) -> Any:
        return create_app(
            {
                "SCHEMA_PATH": str(CRM),
                "DATABASE_URL": new_database(backend, tmp_path),
                "INSTANCE_PATH": str(tmp_path / f"instance_{backend}"),
                "TESTING": True,
                "WTF_CSRF_ENABLED": False,
                "RATELIMIT_ENABLED": False,
                **config,
            }
        )

    return make
