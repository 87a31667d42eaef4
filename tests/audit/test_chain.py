"""Tamper evidence: altering, deleting, swapping or rewriting entries is caught and named."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.audit import chain
from app.audit.cli import audit as audit_cli
from app.audit.service import run_verify
from app.state import state
from tests.audit.conftest import unique


@pytest.fixture
def ctx(audit_app: Flask) -> Iterator[Flask]:
    with audit_app.app_context():
        model = state().models.model("tag")
        session = state().db.session
        for _ in range(3):  # a few entries of our own besides those of start-up
            session.add(model(name=unique("tag-"), color="red"))
            session.commit()
        yield audit_app
        session.remove()


def tables() -> tuple[sa.Table, sa.Table]:
    return state().models.system["audit_log"], state().models.system["audit_head"]


def rows() -> list[dict[str, Any]]:
    log, _ = tables()
    with state().db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(log).order_by(log.c.id)).mappings()]


def execute(*statements: Any) -> None:
    with state().db.engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def problem() -> chain.Problem:
    result = run_verify(record=False)
    assert result.problem is not None, "verify should have failed"
    return result.problem


def test_intact_chain_verifies(ctx: Flask) -> None:
    result = run_verify(record=False)
    assert result.ok, result.problem and result.problem.message
    entries = rows()
    assert [r["id"] for r in entries] == list(range(1, len(entries) + 1))
    assert result.head_hash == entries[-1]["hash"]
    assert entries[0]["prev_hash"] == chain.GENESIS


@pytest.mark.parametrize("column", ["action", "record_title", "changes", "actor_name",
                                    "created_at", "prev_hash", "hash"])
@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_altering_any_single_row_names_it(ctx: Flask, column: str, position: str) -> None:
    log, _ = tables()
    entries = rows()
    target = {"first": entries[0], "middle": entries[len(entries) // 2],
              "last": entries[-1]}[position]
    original = target[column]
    if column == "created_at":
        forged: Any = original.replace(year=2001)
    elif column in ("prev_hash", "hash"):
        forged = "f" * 64
    else:
        forged = f"forged-{unique()}"
    execute(sa.update(log).where(log.c.id == target["id"]).values({column: forged}))
    try:
        found = problem()
        assert found.entry_id == target["id"]
        assert f"#{target['id']}" in found.message
    finally:
        execute(sa.update(log).where(log.c.id == target["id"]).values({column: original}))
    assert run_verify(record=False).ok


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_deleting_a_row_names_it(ctx: Flask, position: str) -> None:
    log, _ = tables()
    entries = rows()
    target = {"first": entries[0], "middle": entries[len(entries) // 2],
              "last": entries[-1]}[position]
    execute(sa.delete(log).where(log.c.id == target["id"]))
    try:
        found = problem()
        assert found.reason == "missing"
        assert found.entry_id == target["id"]
        assert f"#{target['id']}" in found.message
    finally:
        execute(sa.insert(log).values(target))
    assert run_verify(record=False).ok


def test_swapping_two_rows_names_the_first(ctx: Flask) -> None:
    log, _ = tables()
    entries = rows()
    a, b = entries[-3], entries[-2]
    content = [c.name for c in log.c if c.name != "id"]
    execute(
        # hash is unique: park one value while swapping
        sa.update(log).where(log.c.id == a["id"]).values(hash="x" * 64),
        sa.update(log).where(log.c.id == b["id"]).values({c: a[c] for c in content}),
        sa.update(log).where(log.c.id == a["id"]).values({c: b[c] for c in content}),
    )
    try:
        found = problem()
        assert found.entry_id == a["id"]
    finally:
        execute(
            sa.update(log).where(log.c.id == a["id"]).values(hash="x" * 64),
            sa.update(log).where(log.c.id == b["id"]).values({c: b[c] for c in content}),
            sa.update(log).where(log.c.id == a["id"]).values({c: a[c] for c in content}),
        )
    assert run_verify(record=False).ok


def test_appended_forgery_without_the_head_is_caught(ctx: Flask) -> None:
    log, _ = tables()
    last = rows()[-1]
    forged = dict(last, id=last["id"] + 1, prev_hash=last["hash"], action="login",
                  record_title="forged")
    forged["hash"] = chain.entry_hash(forged)
    execute(sa.insert(log).values(forged))
    try:
        found = problem()
        assert found.reason == "head"
        assert found.entry_id == forged["id"]
    finally:
        execute(sa.delete(log).where(log.c.id == forged["id"]))
    assert run_verify(record=False).ok


def test_rewritten_chain_is_caught_by_the_recorded_head(ctx: Flask) -> None:
    log, head = tables()
    recorded = run_verify(record=False).head_hash
    saved = rows()
    with state().db.engine.begin() as conn:  # an attacker recomputes every hash
        prev = chain.GENESIS
        for row in saved:
            new = dict(row, prev_hash=prev, hash="t" + row["hash"][1:])
            if row["id"] == saved[1]["id"]:
                new["record_title"] = "rewritten"
            new["hash"] = chain.entry_hash(new)
            conn.execute(sa.update(log).where(log.c.id == row["id"]).values(
                prev_hash=new["prev_hash"], hash=new["hash"], record_title=new["record_title"]))
            prev = new["hash"]
        conn.execute(sa.update(head).where(head.c.id == 1).values(last_hash=prev))
    try:
        assert run_verify(record=False).ok  # self-consistent, but...
        result = run_verify(expect_head=recorded, record=False)
        assert result.problem is not None and result.problem.reason == "expected_head"
    finally:
        with state().db.engine.begin() as conn:
            for row in saved:
                conn.execute(sa.update(log).where(log.c.id == row["id"]).values(
                    prev_hash=row["prev_hash"], hash="r" + row["hash"][1:],
                    record_title=row["record_title"]))
            for row in saved:
                conn.execute(sa.update(log).where(log.c.id == row["id"]).values(hash=row["hash"]))
            conn.execute(sa.update(head).where(head.c.id == 1).values(
                last_hash=saved[-1]["hash"]))
    assert run_verify(expect_head=recorded, record=False).ok


def test_cli_verify_prints_head_and_fails_naming_the_entry(ctx: Flask) -> None:
    runner = ctx.test_cli_runner()
    result = runner.invoke(audit_cli, ["verify"])
    assert result.exit_code == 0, result.output
    head_line = next(line for line in result.output.splitlines() if line.startswith("Head:"))
    head_hash = head_line.split()[-1]
    assert len(head_hash) == 64
    assert runner.invoke(audit_cli, ["verify", "--expect-head", head_hash]).exit_code == 0
    bogus = runner.invoke(audit_cli, ["verify", "--expect-head", "a" * 64])
    assert bogus.exit_code == 1
    assert "not in the chain" in bogus.output
    log, _ = tables()
    target = rows()[2]
    execute(sa.update(log).where(log.c.id == target["id"]).values(action="forged"))
    try:
        failed = runner.invoke(audit_cli, ["verify"])
        assert failed.exit_code == 1
        assert f"Entry #{target['id']} was altered" in failed.output
    finally:
        execute(sa.update(log).where(log.c.id == target["id"]).values(action=target["action"]))
    # verify itself is an audited event
    assert rows()[-1]["action"] == "audit_verify"


def test_head_row_is_created_lazily(ctx: Flask) -> None:
    log, head = tables()
    saved = rows()
    execute(sa.delete(head))
    try:
        assert problem().reason == "head"
        with state().db.session() as session:
            session.add(state().models.model("tag")(name=unique("lazy-"), color="red"))
            session.commit()
        assert run_verify(record=False).ok
        assert rows()[-1]["prev_hash"] == saved[-1]["hash"]
    finally:
        state().db.session.remove()


def test_cli_changes_are_recorded_as_cli_with_the_command(ctx: Flask) -> None:
    from app.cli import user_create
    from tests.audit.conftest import entries, last_id

    mark = last_id()
    name = unique("cli-user-")
    result = ctx.test_cli_runner().invoke(
        user_create, [name, "--role", "operator", "--password", "Cli-Pass-123"])
    assert result.exit_code == 0, result.output
    created = [r for r in entries(mark, entity="ab_user") if r["record_title"] == name]
    assert created[0]["action"] == "create"
    assert created[0]["source"] == "cli"
    assert created[0]["actor_name"].endswith(": create")  # "<os user>: <command path>"


def test_verify_job_fails_naming_the_entry(ctx: Flask) -> None:
    from app.jobs import enqueue, get_run

    log, _ = tables()
    target = rows()[3]
    execute(sa.update(log).where(log.c.id == target["id"]).values(record_title="forged"))
    ctx.config["JOB_INLINE_SYNC"] = True
    try:
        with ctx.test_request_context():
            run_id = enqueue("audit_verify", {"lang": "en"})
        run = get_run(run_id)
        assert run["status"] == "failed"
        assert f"Entry #{target['id']} was altered" in run["error"]
    finally:
        ctx.config.pop("JOB_INLINE_SYNC")
        execute(sa.update(log).where(log.c.id == target["id"]).values(
            record_title=target["record_title"]))
    with ctx.test_request_context():
        ctx.config["JOB_INLINE_SYNC"] = True
        run_id = enqueue("audit_verify", {"lang": "en"})
        ctx.config.pop("JOB_INLINE_SYNC")
    assert get_run(run_id)["status"] == "done"
