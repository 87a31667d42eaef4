"""The streaming export reads every row on every backend (titles come through a
second connection, so MariaDB's server-side cursor is not cut short)."""

from __future__ import annotations

import csv
import datetime as dt
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from app.io.exporter import BATCH, export_file
from app.state import state


def test_export_of_more_than_a_batch_holds_every_row_and_its_titles(
        crm_app: Flask, tmp_path: Path) -> None:
    token = uuid.uuid4().hex[:8]
    with crm_app.app_context():
        table = state().models.table("customer")
        employees = state().models.table("employee")
        now = dt.datetime.now()
        with state().db.engine.begin() as conn:
            owner = conn.execute(sa.insert(employees).values(
                name=f"导出员工{token}", employee_no=f"X{token}", created_at=now,
                updated_at=now)).inserted_primary_key[0]
            conn.execute(sa.insert(table), [
                {"name": f"导{token}-{i}", "kind": "company", "status": "active", "level": "c",
                 "membership_level": "none", "owner_id": owner, "remark": "=1+2",
                 "created_at": now, "updated_at": now} for i in range(2 * BATCH + 7)])
            total = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        count = export_file("customer", tmp_path / "all.csv", fmt="csv", lang="en")
    with open(tmp_path / "all.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert count == total == len(rows)
    mine = [r for r in rows if r["Name"].startswith(f"导{token}-")]
    assert len(mine) == 2 * BATCH + 7
    assert all(r["Owner"] == f"导出员工{token}" and r["Remark"] == "'=1+2" for r in mine)
