"""notify(): rows in the caller's transaction, one row per recipient, dedupe keys."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from app.i18n import N_
from app.notify import notify
from app.state import state


def _rows(key: str) -> list[Any]:
    table = state().models.system["notification"]
    return list(state().db.session.execute(
        sa.select(table).where(table.c.dedupe_key == key)).mappings())


def _admin_id() -> int:
    from flask import current_app

    return current_app.appbuilder.sm.find_user(username="admin").id


def test_notify_writes_one_row_per_distinct_recipient(crm_app: Any) -> None:
    with crm_app.app_context():
        session = state().db.session
        admin = _admin_id()
        written = notify(session, [admin, admin, None], N_("Hello %(name)s"), {"name": "x"},
                         dedupe_key="api-distinct")
        session.commit()
        assert written == 1
        rows = _rows("api-distinct")
        assert [r["user_id"] for r in rows] == [admin]
        assert rows[0]["read_at"] is None


def test_rolled_back_write_notifies_nobody(crm_app: Any) -> None:
    with crm_app.app_context():
        session = state().db.session
        assert notify(session, [_admin_id()], N_("Hello %(name)s"), {"name": "y"},
                      dedupe_key="api-rollback") == 1
        session.rollback()
        assert _rows("api-rollback") == []
        # the key went with the rollback: the event may still be notified later
        assert notify(session, [_admin_id()], N_("Hello %(name)s"), {"name": "y"},
                      dedupe_key="api-rollback") == 1
        session.commit()
        assert len(_rows("api-rollback")) == 1


def test_second_call_with_the_same_key_is_a_no_op(crm_app: Any) -> None:
    with crm_app.app_context():
        session = state().db.session
        assert notify(session, [_admin_id()], N_("Hello %(name)s"), {}, dedupe_key="api-dup") == 1
        session.commit()
        assert notify(session, [_admin_id()], N_("Hello %(name)s"), {}, dedupe_key="api-dup") == 0
        session.commit()
        assert len(_rows("api-dup")) == 1


def test_racing_callers_with_one_key_write_once(crm_app: Any) -> None:
    """Two sessions (threads) notify with one key at once: exactly one writes."""
    if crm_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite serialises writers; the race is a PostgreSQL/MariaDB matter")
    results: list[int] = []
    barrier = threading.Barrier(2)
    with crm_app.app_context():
        admin = _admin_id()

    def worker() -> None:
        with crm_app.app_context():
            session = state().db.session
            barrier.wait()
            results.append(notify(session, [admin], N_("Hello %(name)s"), {},
                                  dedupe_key="api-race"))
            session.commit()
            state().db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [0, 1]
    with crm_app.app_context():
        assert len(_rows("api-race")) == 1
