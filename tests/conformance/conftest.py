"""One seeded app per schema per backend, shared by the conformance tests.

`world` is session-scoped and parametrised over (schema, backend): the app is
built with `app_factory`, seeded once through the ORM (`seed.py`), and its rows
loaded into the independent oracle (`oracle.py`). Mismatches found by every
test are kept in `REPORT` and printed, one per line, at the end of the run,
with the size of the suite (roles × entities × ways × assertions per schema).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.schema.spec import AppSpec
from app.state import state
from tests.conformance.oracle import Account, Oracle
from tests.conformance.seed import PASSWORD, Seeded, Seeder
from tests.conftest import CRM, LIBRARY, login

WORLDS = [(CRM, "sqlite"), (CRM, "postgresql"), (LIBRARY, "sqlite"), (LIBRARY, "postgresql")]


@dataclass
class Tally:
    """What one schema's run covered, and what it found wrong."""

    roles: set[str] = field(default_factory=set)
    entities: set[str] = field(default_factory=set)
    ways: set[str] = field(default_factory=set)
    assertions: int = 0
    mismatches: list[str] = field(default_factory=list)

    def check(self, world_name: str, ok: bool, account: Account, entity: str, way: str,
              expected: Any, got: Any) -> bool:
        """Count one assertion of `account` on `entity` by `way`; keep it if it failed."""
        self.assertions += 1
        self.roles.add(account.roles[0])
        self.entities.add(entity)
        self.ways.add(way)
        if not ok:
            self.mismatches.append(
                f"[{world_name}] {account.roles[0]}({account.username})/{entity}/{way}: "
                f"expected {expected} got {got}")
        return ok

    def finish(self, world_name: str, what: str, request: pytest.FixtureRequest) -> None:
        """Print this world's mismatches; fail on them unless the verdict test collects them."""
        mine = [m for m in self.mismatches if m.startswith(f"[{world_name}]")]
        print(f"\n{world_name}: {self.assertions} {what}, {len(mine)} mismatches")
        for line in mine:
            print("  " + line)
        if not verdict_selected(request):
            assert not mine, "\n".join(mine)


REPORT: dict[str, Tally] = defaultdict(Tally)  # "<schema>/<part>" -> tally


@dataclass
class World:
    name: str  # crm-sqlite
    schema: str  # crm
    backend: str
    app: Flask
    spec: AppSpec
    seeded: Seeded
    oracle: Oracle
    _ui: dict[int, Any] = field(default_factory=dict)
    _api: dict[int, dict[str, str]] = field(default_factory=dict)

    @property
    def accounts(self) -> list[Account]:
        return self.seeded.accounts

    def ui(self, account: Account) -> Any:
        """One logged-in (English) browser client per account, reused."""
        if account.user_id not in self._ui:
            self._ui[account.user_id] = login(self.app.test_client(), account.username, PASSWORD)
        return self._ui[account.user_id]

    def api(self, account: Account) -> dict[str, str]:
        """The JWT headers of an account, fetched once."""
        if account.user_id not in self._api:
            client = self.app.test_client()
            token = client.post("/api/v1/security/login", json={
                "username": account.username, "password": PASSWORD, "provider": "db"}).json
            self._api[account.user_id] = {"Authorization": f"Bearer {token['access_token']}"}
        return self._api[account.user_id]


@pytest.fixture(scope="session", params=WORLDS,
                ids=[f"{s.stem}-{b}" for s, b in WORLDS])
def world(request: pytest.FixtureRequest, app_factory: Callable[..., Any]) -> World:
    schema, backend = request.param
    app = app_factory(schema, backend, keep=True)
    with app.app_context():
        spec = state().spec
    seeded = Seeder(app, spec, "cf").run()
    return World(f"{Path(schema).stem}-{backend}", Path(schema).stem, backend, app, spec,
                 seeded, Oracle(spec, seeded.rows))


def verdict_selected(request: pytest.FixtureRequest) -> bool:
    """Whether the final verdict test runs (then it, not each part, fails the run)."""
    return any(item.name == "test_no_way_in_disagrees_with_the_schema"
               for item in request.session.items)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT:
        return
    write = terminalreporter.write_line
    write("")
    write("conformance suite: roles × entities × ways × assertions")
    for key in sorted(REPORT):
        t = REPORT[key]
        write(f"  {key}: {len(t.roles)} roles × {len(t.entities)} entities × "
              f"{len(t.ways)} ways, {t.assertions} assertions, "
              f"{len(t.mismatches)} mismatches")
    for key in sorted(REPORT):
        for line in REPORT[key].mismatches:
            write(f"  MISMATCH {line}")


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """The verdict runs after every part, whatever order the worlds put them in."""
    last = [i for i in items if i.name == "test_no_way_in_disagrees_with_the_schema"]
    for item in last:
        items.remove(item)
        items.append(item)
