"""The bulk import path: its audit entries equal the per-row path's, the chain holds,
unchanged rows write nothing, and a killed import leaves whole chunks only."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.audit.service import run_verify
from app.context import Actor, acting_as
from app.io.importer import Importer
from app.privacy.keys import is_token, unseal
from app.state import state
from tests.audit.conftest import entries, last_id

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _file(tmp_path: Path, token: str, tag: str, owner: str, n: int = 6) -> Path:
    rows = [["名称", "类型", "电话", "邮箱", "信用额度", "证件号", "标签", "负责人", "备注"]]
    for i in range(n):
        rows.append([f"批量{token}-{i}", "企业" if i % 2 else "个人", f"137{token}{i:02d}",
                     f"b{token}{i}@example.com", f"{i * 10}.5", f"ID{token}{i}",
                     tag if i % 3 else "", owner if i % 2 else "", "=1+1" if i == 1 else ""])
    return _write(tmp_path / f"bulk-{token}.csv", rows)


def _normalised(entry: dict[str, Any], token: str, ids: dict[str, str]) -> dict[str, Any]:
    """An entry's content with the run's token, the record's id and sealed ciphertext
    replaced by what they stand for (tokens: their clear text)."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):  # a reference's id differs per run (its title does not)
            return {k: clean(v) for k, v in value.items() if not (k == "id" and "title" in value)}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if is_token(value):
            value = "sealed:" + str(unseal(value))
        if isinstance(value, str):
            for real, alias in ids.items():
                value = value.replace(f"#{real}", f"#{alias}")
            return value.replace(token, "T")
        return value

    return {"action": entry["action"], "entity": entry["entity"],
            "title": clean(entry["record_title"]), "changes": clean(entry["changes"]),
            "actor": entry["actor_name"], "source": entry["source"]}


def _run(app: Flask, path: Path, bulk_audit: bool) -> tuple[Any, list[dict[str, Any]]]:
    with app.app_context(), acting_as(Actor(None, "import job", "job")):
        mark = last_id()
        runner = Importer("customer")
        runner.bulk_audit = bulk_audit
        result = runner.run(path)
        state().db.session.remove()
        return result, entries(mark, entity="customer")


def _helpers(app: Flask, token: str) -> tuple[str, str]:
    """A tag and an employee the rows refer to (made through the record service)."""
    from app.records import records

    with app.app_context(), acting_as(Actor(None, "setup", "job")):
        records("tag").create({"name": f"标签{token}"})
        records("employee").create({"name": f"员工{token}", "employee_no": f"E{token}"})
        state().db.session.commit()
        state().db.session.remove()
    return f"标签{token}", f"员工{token}"


def test_bulk_entries_equal_the_per_row_entries_and_the_chain_verifies(
        crm_app: Flask, tmp_path: Path) -> None:
    runs = []
    for bulk_audit in (False, True):
        token = str(uuid.uuid4().int)[:6]
        tag, owner = _helpers(crm_app, token)
        result, logged = _run(crm_app, _file(tmp_path, token, tag, owner), bulk_audit)
        assert result.created == 6 and result.rejected == 0, result.problems
        creates = [e for e in logged if e["action"] == "create"]
        assert len(creates) == 6  # one entry per row, links and rollups folded into it
        ids = {e["record_id"]: f"r{i}" for i, e in enumerate(creates)}
        runs.append([_normalised(e, token, ids) for e in creates])
    per_row, bulk = runs
    assert bulk == per_row
    assert any("tags" in e["changes"] and "owner" in e["changes"] for e in bulk)
    assert all(e["changes"]["phone"].get("sealed") for e in bulk)
    assert all(e["changes"]["id_no"] for e in bulk)
    with crm_app.app_context():
        assert run_verify(record=False).ok


def test_reimport_of_unchanged_rows_writes_nothing(crm_app: Flask, tmp_path: Path) -> None:
    token = str(uuid.uuid4().int)[:6]
    tag, owner = _helpers(crm_app, token)
    path = _file(tmp_path, token, tag, owner)
    first, _ = _run(crm_app, path, True)
    assert first.created == 6
    again, logged = _run(crm_app, path, True)
    assert again.unchanged == 6 and again.created == again.updated == 0
    assert logged == []


KILLED = """
import os, sys, time
sys.path.insert(0, {root!r})
os.environ.setdefault("ADMIN_PASSWORD", "Bench-Pass-2024!")
from tests.conftest import CRM, build_app
from pathlib import Path
import app.io.importer as imp
app = build_app(CRM, {url!r}, Path({instance!r}))
imp.CHUNK_SIZE = 50
original = imp.Importer._write
calls = []
def slow_write(self, inserts, updates):
    out = original(self, inserts, updates)
    calls.append(1)
    print("chunk", len(calls), flush=True)
    time.sleep(0.3)
    return out
imp.Importer._write = slow_write
with app.app_context():
    imp.import_file("customer", {path!r})
"""


def test_a_killed_import_leaves_whole_chunks_only(crm_app: Flask, tmp_path: Path) -> None:
    token = str(uuid.uuid4().int)[:6]
    rows = [["名称", "电话"]] + [[f"断{token}-{i}", f"136{token}{i:03d}"] for i in range(400)]
    path = _write(tmp_path / "killed.csv", rows)
    script = KILLED.format(root=str(ROOT), url=crm_app.config["SQLALCHEMY_DATABASE_URI"],
                           instance=str(crm_app.instance_path),
                           path=str(path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                            env=dict(os.environ, SCHEMADESK_LANG="en"))
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("chunk 2"):
            break
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with crm_app.app_context():
        table = state().models.table("customer")
        count = state().db.session.execute(
            sa.select(sa.func.count()).select_from(table)
            .where(table.c.name.like(f"断{token}-%"))).scalar_one()
        logged = len([e for e in entries(0, entity="customer", action="create")
                      if (e["record_title"] or "").startswith(f"断{token}-")])
        state().db.session.remove()
    assert count % 50 == 0 and 100 <= count < 400
    assert logged == count  # every written row has its entry, and no entry lacks its row

