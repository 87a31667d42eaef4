"""Every export (list download, job, CLI) is audited once, with its filters and its rows counted."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import openpyxl
from flask import Flask
from flask.cli import ScriptInfo

from app.context import Actor, acting_as
from app.io.cli import export_command
from app.jobs import wait
from app.state import state
from tests.audit.conftest import entries, last_id


def two_customers(app: Flask) -> str:
    """Two customers named with a fresh token; one has a remark of three lines."""
    token = uuid.uuid4().hex[:10]
    with app.app_context(), acting_as(Actor(1, "admin", "cli")):
        customer = state().models.model("customer")
        session = state().db.session
        session.add_all([
            customer(name=f"{token} a", kind="company", remark="first\nsecond\nthird"),
            customer(name=f"{token} b", kind="person", remark="one line"),
        ])
        session.commit()
        session.remove()
    return token


def exports_since(app: Flask, mark: int) -> list[dict[str, Any]]:
    with app.app_context():
        return entries(mark, action="export")


def test_csv_download_is_audited_with_search_order_and_rows(
    sqlite_crm_app: Flask, sqlite_admin_client: Any
) -> None:
    token = two_customers(sqlite_crm_app)
    with sqlite_crm_app.app_context():
        mark = last_id()
    response = sqlite_admin_client.get(
        f"/customer/export?q={token}&_oc_CustomerView=name&_od_CustomerView=asc&format=csv")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert len(rows) == 3 and "first\nsecond\nthird" in rows[1]
    [entry] = exports_since(sqlite_crm_app, mark)
    assert entry["entity"] == "customer" and entry["source"] == "ui"
    assert entry["detail"] == {
        "format": "csv", "rows": 2,
        "filters": {"_oc_CustomerView": ["name"], "_od_CustomerView": ["asc"], "q": [token]},
    }


def test_xlsx_download_is_audited_with_its_filters(
    sqlite_crm_app: Flask, sqlite_admin_client: Any
) -> None:
    token = two_customers(sqlite_crm_app)
    with sqlite_crm_app.app_context():
        mark = last_id()
    response = sqlite_admin_client.get(f"/customer/export?q={token}&format=xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    assert sheet.max_row == 3
    [entry] = exports_since(sqlite_crm_app, mark)
    assert entry["detail"] == {"format": "xlsx", "rows": 2, "filters": {"q": [token]}}


def test_export_job_counts_rows_not_lines(sqlite_crm_app: Flask, sqlite_admin_client: Any) -> None:
    token = two_customers(sqlite_crm_app)
    with sqlite_crm_app.app_context():
        mark = last_id()
    response = sqlite_admin_client.get(f"/customer/export?q={token}&format=csv&async=1")
    assert response.status_code == 302
    run_id = next(r["id"] for r in sqlite_admin_client.get("/jobs/api/runs").get_json()["runs"]
                  if r["kind"] == "export")
    with sqlite_crm_app.app_context():
        run = wait(run_id, timeout=60)
    assert run["status"] == "done", run["error"]
    assert run["counts"] == {"rows": 2}  # the three-line remark is one row
    [entry] = exports_since(sqlite_crm_app, mark)
    assert entry["source"] == "job"
    assert entry["detail"]["rows"] == 2 and entry["detail"]["format"] == "csv"
    assert entry["detail"]["filters"] == {"q": [token]}
    assert entry["detail"]["file"] == Path(run["result_file"]).name


def test_cli_export_is_audited(sqlite_crm_app: Flask, tmp_path: Path) -> None:
    two_customers(sqlite_crm_app)
    with sqlite_crm_app.app_context():
        mark = last_id()
        total = state().db.session.query(state().models.model("customer")).count()
        state().db.session.remove()
    out = tmp_path / "all.csv"
    result = sqlite_crm_app.test_cli_runner().invoke(
        export_command, ["customer", str(out)],
        obj=ScriptInfo(create_app=lambda: sqlite_crm_app))
    assert result.exit_code == 0, result.output
    assert f"Exported {total} rows" in result.output
    [entry] = exports_since(sqlite_crm_app, mark)
    assert entry["source"] == "cli"
    assert entry["detail"] == {"format": "csv", "rows": total, "filters": {}, "file": "all.csv"}
