"""Helpers for the audit tests: read entries back, make records."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from app.state import state
from tests.conftest import BACKENDS, CRM


def last_id() -> int:
    """The id of the newest audit entry (0 when empty)."""
    log = state().models.system["audit_log"]
    with state().db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(log.c.id))).scalar() or 0


def entries(after: int = 0, **where: Any) -> list[dict[str, Any]]:
    """Audit rows newer than `after` matching `where` (column=value), oldest first."""
    log = state().models.system["audit_log"]
    query = sa.select(log).where(log.c.id > after).order_by(log.c.id)
    for name, value in where.items():
        query = query.where(log.c[name] == value)
    with state().db.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    for row in rows:
        row["changes"] = json.loads(row["changes"]) if row["changes"] else {}
        row["detail"] = json.loads(row["detail"]) if row["detail"] else {}
    return rows


def unique(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:8]


def unique_phone() -> str:
    return "139" + str(uuid.uuid4().int)[:8]


@pytest.fixture(scope="module", params=BACKENDS)
def audit_app(request: pytest.FixtureRequest, app_factory: Callable[..., Any]) -> Any:
    """A CRM app of this module's own (tests here may tamper with its log)."""
    return app_factory(CRM, request.param)
