"""An import keeps rollups and classified fields right, on every backend.

New rows get their computed values without a recompute of their own (no
children yet), the existing parents they point at are recomputed once per
chunk, and a classify rule that reads a row's own field still decides from it.
"""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.audit.service import run_verify
from app.io import importer
from app.io.importer import import_file
from app.records import records
from app.state import state
from tests.audit.conftest import entries, last_id
from tests.conftest import BACKENDS

LEAGUE = Path(__file__).with_name("rollup_import.yaml")


@pytest.fixture(scope="module", params=BACKENDS)
def league(request: pytest.FixtureRequest, app_factory: Any) -> Flask:
    return app_factory(LEAGUE, request.param)


def _csv(path: Path, rows: list[list[Any]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _row(app: Flask, entity: str, name: str) -> dict[str, Any]:
    with app.app_context():
        table = state().models.table(entity)
        found = dict(state().db.session.execute(
            sa.select(table).where(table.c.name == name)).mappings().one())
        state().db.session.remove()
        return found


def test_players_imported_into_an_existing_team_update_its_rollups(
        league: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = uuid.uuid4().hex[:6]
    team = f"队{token}"
    with league.app_context():
        records("team").create({"name": team})
        state().db.session.commit()
        state().db.session.remove()
    assert _row(league, "team", team)["size"] == "small"
    monkeypatch.setattr(importer, "CHUNK_SIZE", 2)  # the parent recomputed per chunk
    rows = [["name", "team", "age", "goals"]]
    rows += [[f"p{token}-{i}", team, 16 + i, i] for i in range(5)]
    with league.app_context():
        mark = last_id()
        result = import_file("player", _csv(tmp_path / "players.csv", rows))
        logged = entries(mark)
        state().db.session.remove()
    assert result.created == 5 and result.rejected == 0, result.problems
    stored = _row(league, "team", team)
    assert (stored["players"], stored["goals"], stored["size"]) == (5, 10, "big")
    grades = [_row(league, "player", f"p{token}-{i}")["grade"] for i in range(5)]
    assert grades == ["junior", "junior", "senior", "senior", "senior"]
    assert [_row(league, "player", f"p{token}-{i}")["assists"] for i in range(5)] == [0] * 5
    creates = [e for e in logged if e["action"] == "create" and e["entity"] == "player"]
    assert len(creates) == 5
    assert {e["changes"]["grade"]["after"] for e in creates} == {"junior", "senior"}
    assert all(e["changes"]["assists"]["after"] == 0 for e in creates)
    # the team's recompute is logged as the import's update of it, values as stored
    team_updates = [e for e in logged if e["entity"] == "team" and e["action"] == "update"]
    assert team_updates and team_updates[-1]["changes"]["players"]["after"] == 5
    with league.app_context():
        assert run_verify(record=False).ok


def test_imported_teams_get_the_values_of_a_team_without_players(
        league: Flask, tmp_path: Path) -> None:
    token = uuid.uuid4().hex[:6]
    rows = [["name"], [f"新{token}-a"], [f"新{token}-b"]]
    with league.app_context():
        result = import_file("team", _csv(tmp_path / "teams.csv", rows))
        state().db.session.remove()
    assert result.created == 2, result.problems
    for suffix in ("a", "b"):
        stored = _row(league, "team", f"新{token}-{suffix}")
        assert (stored["players"], stored["goals"], stored["size"]) == (0, 0, "small")
