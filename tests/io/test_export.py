"""Exports: the list's filters/search/order, labels, titles, masking, row rules, formulas."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from openpyxl import load_workbook

from app.io.exporter import export_file
from app.io.importer import import_file, neutralise
from app.state import state
from tests.conftest import ADMIN_PASSWORD, BACKENDS, CRM, login


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def phone() -> str:
    return "136" + str(uuid.uuid4().int)[:8]


def seed(app: Flask, tmp_path: Path, token: str) -> list[str]:
    phones = [phone() for _ in range(4)]
    path = write_csv(tmp_path / "seed.csv", [
        ["name", "kind", "phone", "remark", "credit"],
        [f"=HYPERLINK(\"http://x\") {token}", "person", phones[0], "+1 call me", "5"],
        [f"B {token}", "company", phones[1], "@sum", "6"],
        [f"C {token}", "person", phones[2], "plain", "7"],
        ["D other", "person", phones[3], "-3", "8"],
    ])
    with app.app_context():
        assert import_file("customer", path).created == 4
    return phones


def test_formula_cells_are_neutralised() -> None:
    for text in ("=1+1", "+1", "-1", "@A1", "\tx", "\rx"):
        assert neutralise(text) == "'" + text
    assert neutralise("plain") == "plain" and neutralise(-1) == -1


def test_export_of_filtered_searched_list_matches_what_the_list_shows(
    crm_app: Flask, admin_client, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:8]
    seed(crm_app, tmp_path, token)
    # search `q` plus a FAB filter on kind (person), ordered by name descending
    query = (f"q={token}&_flt_0_kind=person&_oc_CustomerView=name&_od_CustomerView=desc"
             "&format=csv")
    response = admin_client.get(f"/customer/export?{query}")
    assert response.status_code == 200
    body = response.data
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    headers = rows[0]
    assert headers[:2] == ["Name", "Type"]
    names = [r[0] for r in rows[1:]]
    assert names == [f"C {token}", f"'=HYPERLINK(\"http://x\") {token}"]
    kind = headers.index("Type")
    assert {r[kind] for r in rows[1:]} == {"Person"}
    remark = headers.index("Remark")
    assert "'+1 call me" in [r[remark] for r in rows[1:]]


def test_export_xlsx_in_chinese_with_labels(crm_app: Flask, admin_client, tmp_path: Path) -> None:
    token = uuid.uuid4().hex[:8]
    seed(crm_app, tmp_path, token)
    admin_client.get("/lang/zh")
    response = admin_client.get(f"/customer/export?q={token}&format=xlsx")
    admin_client.get("/lang/en")
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.data), read_only=True)
    rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    assert rows[0][0] == "名称" and rows[0][1] == "类型"
    assert {r[1] for r in rows[1:]} == {"个人", "企业"}
    assert len(rows) == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_export_round_trips_through_import(app_factory, backend: str, tmp_path: Path) -> None:  # noqa: ANN001
    # A database of its own: customers other tests leave without a phone
    # (the import key) would be re-created, not matched.
    crm_app = app_factory(CRM, backend)
    token = uuid.uuid4().hex[:8]
    phones = seed(crm_app, tmp_path, token)
    out = tmp_path / "all.csv"
    with crm_app.app_context():
        count = export_file("customer", out, lang="en")
        assert count >= 4
        again = import_file("customer", out, dry_run=True)
    assert again.created == 0 and again.rejected == 0
    assert again.unchanged + again.updated == count
    text = out.read_text(encoding="utf-8-sig")
    assert phones[0] in text  # the CLI (no signed-in user) sees clear values


def test_operator_export_is_row_filtered_and_masked(crm_app: Flask, tmp_path: Path) -> None:
    token = uuid.uuid4().hex[:8]
    username = f"op_{token}"
    with crm_app.app_context():
        sm = crm_app.appbuilder.sm
        user = sm.add_user(username, "Op", "Erator", f"{username}@example.com",
                           sm.find_role("operator"), password=ADMIN_PASSWORD)
        user_id = user.id
        employees = state().models.table("employee")
        customers = state().models.table("customer")
        session = state().db.session
        employee_id = session.execute(sa.insert(employees).values(
            name=f"Emp {token}", employee_no=token, account_id=user_id,
            created_at=sa.func.now(), updated_at=sa.func.now())).inserted_primary_key[0]
        session.commit()
    own = write_csv(tmp_path / "own.csv", [["name", "phone", "owner"],
                                           [f"Mine {token}", phone(), f"Emp {token}"],
                                           [f"Theirs {token}", phone(), ""]])
    with crm_app.app_context():
        assert import_file("customer", own).created == 2
    with crm_app.test_client() as client:
        login(client, username, ADMIN_PASSWORD)
        response = client.get(f"/customer/export?q={token}&format=csv")
        assert response.status_code == 200
        rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
        assert [r[0] for r in rows[1:]] == [f"Mine {token}"]
        phone_col = rows[0].index("Phone")
        assert "****" in rows[1][phone_col]
        # an operator's import makes the operator own the new records
        mine = write_csv(tmp_path / "op.csv", [["name", "phone"], [f"Imported {token}", phone()]])
        with open(mine, "rb") as fh:
            preview = client.post("/customer/import", data={"file": (fh, "op.csv")},
                                  content_type="multipart/form-data")
        assert preview.status_code == 200
        assert b"sd-created\">1<" in preview.data
    with crm_app.app_context():
        from app.context import Actor, acting_as

        with acting_as(Actor(user_id, username, "cli")):
            assert import_file("customer", mine).created == 1
        row = state().db.session.execute(
            sa.select(customers).where(customers.c.name == f"Imported {token}")).one()
        assert row.owner_id == employee_id
        state().db.session.remove()
