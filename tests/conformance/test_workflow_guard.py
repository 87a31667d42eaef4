"""No way in changes a workflow's state except its own steps (业务流程 / 状态流转).

Generated from the spec: for every entity with a `workflow`, every account
(each role, and Admin) and a few seeded records inside and outside its reach,
a `PUT` setting another state, the edit form posting another state and a step
whose `from` does not match the record are each refused — with the answer the
grants and row rules give (403 without `update`, 404 out of reach, 422 for the
`PUT`, 409 for the step) — and the stored state is unchanged afterwards. Nothing
here succeeds, so the seeded rows the other parts read stay as they were.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.state import state
from tests.conformance.conftest import REPORT, World
from tests.conformance.oracle import Account

SAMPLE = 2  # records inside and outside each account's reach


class Guard:
    def __init__(self, world: World):
        self.w = world
        self.tally = REPORT[f"{world.schema}/workflow"]

    def check(self, ok: bool, account: Account, entity: str, way: str, expected: Any,
              got: Any) -> None:
        self.tally.check(self.w.name, ok, account, entity, way, expected, got)

    def stored(self, entity: str, field: str, pk: int) -> Any:
        with self.w.app.app_context():
            table = state().models.table(entity)
            value = state().db.session.execute(
                sa.select(table.c[field]).where(table.c.id == pk)).scalar()
            state().db.session.remove()
            return value

    def walk(self, account: Account, entity_name: str) -> None:
        entity = self.w.spec.entity(entity_name)
        wf = entity.workflow
        assert wf is not None
        states = [c.key for c in entity.field(wf.field).choices]
        oracle = self.w.oracle
        may_update = "update" in oracle.actions(account, entity_name)
        reach = oracle.reach(account, entity_name)
        rows = self.w.seeded.rows.of(entity_name)
        inside = [pk for pk in sorted(rows) if pk in reach][:SAMPLE]
        outside = [pk for pk in sorted(rows) if pk not in reach][:SAMPLE]
        client = self.w.app.test_client()
        headers = self.w.api(account)
        for pk in inside + outside:
            current = self.stored(entity_name, wf.field, pk)
            other = next(s for s in states if s != current)
            if not may_update:
                put, step = {401, 403, 404}, {401, 403, 404}
            elif pk not in reach:
                put, step = {404}, {404}
            else:
                put, step = {422}, {409}
            r = client.put(f"/api/v1/{entity_name}/{pk}", json={wf.field: other},
                           headers=headers)
            self.check(r.status_code in put, account, entity_name, "api-put(state)",
                       sorted(put), r.status_code)
            wrong = next((t for t in wf.transitions if current not in t.sources), None)
            if wrong is not None:
                r = client.post(f"/api/v1/{entity_name}/{pk}/transition/{wrong.name}",
                                json={"comment": "conformance"}, headers=headers)
                self.check(r.status_code in step, account, entity_name,
                           "api-transition(wrong from)", sorted(step), r.status_code)
            ui = self.w.ui(account)
            ui.post(f"/{entity_name}/edit/{pk}", data={wf.field: other})
            got = self.stored(entity_name, wf.field, pk)
            self.check(got == current, account, entity_name, "state kept", current, got)


def test_no_way_in_changes_a_workflow_state(world: World, request: Any) -> None:
    guard = Guard(world)
    before = guard.tally.assertions
    for entity in world.spec.entities:
        if entity.workflow is None:
            continue
        for account in world.accounts:
            guard.walk(account, entity.name)
    made = guard.tally.assertions - before
    assert made or not any(e.workflow for e in world.spec.entities)
    guard.tally.finish(world.name, "workflow assertions", request)
