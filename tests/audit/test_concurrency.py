"""Several processes writing at once still give one linear chain with no gaps."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from app.audit.service import run_verify
from app.state import state
from tests.conftest import CRM

PROCESSES = 4
WRITES = 200


def _writer(url: str, instance: str, worker: int, writes: int, barrier: Any) -> None:
    """One process: its own app on the shared database, `writes` committed changes."""
    from app import create_app

    app = create_app({"SCHEMA_PATH": str(CRM), "DATABASE_URL": url, "INSTANCE_PATH": instance,
                      "TESTING": True})
    with app.app_context():
        session = state().db.session
        model = state().models.model("tag")
        barrier.wait(timeout=120)
        tag = None
        for i in range(writes):
            if i % 2 == 0:  # a create, then an update of it: both kinds append
                tag = model(name=f"w{worker}-{i}", color="red")
                session.add(tag)
            else:
                tag.color = "green"
            session.commit()


@pytest.mark.parametrize("backend", ["postgresql", "mariadb", "sqlite"])
def test_concurrent_writers_keep_one_chain_without_gaps(
    app_factory: Callable[..., Any], backend: str
) -> None:
    app = app_factory(CRM, backend)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    with app.app_context():
        before = run_verify(record=False)
        assert before.ok
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    workers = [
        context.Process(target=_writer,
                        args=(url, str(app.instance_path), n, WRITES, barrier))
        for n in range(PROCESSES)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=600)
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    with app.app_context():
        result = run_verify(record=False)
        assert result.ok, result.problem and result.problem.message
        log = state().models.system["audit_log"]
        with state().db.engine.connect() as conn:
            ids = conn.execute(sa.select(log.c.id).order_by(log.c.id)).scalars().all()
            tag_entries = conn.execute(
                sa.select(log.c.action, sa.func.count())
                .where(log.c.entity == "tag", log.c.id > before.head_id)
                .group_by(log.c.action)
            ).all()
    assert ids == list(range(1, len(ids) + 1))  # no gaps, no duplicates
    assert result.count == before.count + PROCESSES * WRITES
    assert dict(tag_entries) == {"create": PROCESSES * WRITES // 2,
                                 "update": PROCESSES * WRITES // 2}
