"""The import screens (upload -> preview -> confirm), the job list, the CLI commands."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from app.io.cli import export_command, import_command
from app.jobs import wait
from app.state import state
from tests.conftest import phone_in


def gbk_bytes(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode("gbk")


def test_upload_preview_confirm_and_watch_the_job(crm_app: Flask, admin_client) -> None:
    token = uuid.uuid4().hex[:8]
    phones = ["135" + str(uuid.uuid4().int)[:8] for _ in range(2)]
    data = gbk_bytes([["名称", "电话", "信用额度"], [f"甲 {token}", phones[0], "1"],
                      [f"乙 {token}", phones[1], "负数"]])
    preview = admin_client.post(
        "/customer/import", data={"file": (io.BytesIO(data), "客户.csv"), "encoding": ""},
        content_type="multipart/form-data")
    page = preview.data.decode()
    assert preview.status_code == 200
    assert 'sd-created">1<' in page and 'sd-rejected">1<' in page
    assert "Not a whole number" in page or "Not a number" in page
    with crm_app.app_context():
        table = state().models.table("customer")
        assert state().db.session.execute(
            sa.select(table).where(phone_in(phones))).first() is None
        state().db.session.remove()
    report = page.split("/customer/import/report/")[1].split('"')[0]
    download = admin_client.get(f"/customer/import/report/{report}")
    assert download.status_code == 200 and "负数" in download.data.decode("utf-8-sig")
    confirm_token = page.split('name="token" value="')[1].split('"')[0]
    response = admin_client.post("/customer/import/confirm", data={"token": confirm_token})
    assert response.status_code == 302 and response.location.endswith("/jobs/list/")
    runs = admin_client.get("/jobs/api/runs").get_json()["runs"]
    run_id = runs[0]["id"]
    with crm_app.app_context():
        assert wait(run_id, timeout=60)["status"] == "done"
    run = next(r for r in admin_client.get("/jobs/api/runs").get_json()["runs"]
               if r["id"] == run_id)
    assert run["counts"]["created"] == 1 and run["progress"] == 100
    assert run["error_url"]
    assert admin_client.get(run["error_url"]).status_code == 200
    listing = admin_client.get("/jobs/list/").data.decode()
    assert f'data-run-id="{run_id}"' in listing and "jobs/jobs.js" in listing
    assert "<script>" not in listing.split("jobs/jobs.js")[0].split("sd-jobs")[1]
    # somebody else's upload token is refused
    assert admin_client.post("/customer/import/confirm",
                             data={"token": "customer-deadbeef.csv"}).status_code == 404


def test_list_page_links_to_import_and_export_with_its_args(admin_client) -> None:
    page = admin_client.get("/customer/list/?q=abc").data.decode()
    assert 'href="/customer/import"' in page
    assert "/customer/export?q=abc&amp;format=csv" in page


def test_template_download(admin_client) -> None:
    from openpyxl import load_workbook

    response = admin_client.get("/customer/import/template?format=xlsx")
    workbook = load_workbook(io.BytesIO(response.data))
    rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    assert rows[0][0] == "Name" and len(rows) == 2
    assert len(workbook.worksheets) == 2


def test_cli_import_dry_run_and_export(crm_app: Flask, tmp_path: Path) -> None:
    token = uuid.uuid4().hex[:8]
    path = tmp_path / "p.csv"
    path.write_bytes(gbk_bytes([["产品编码", "名称", "单价", "在售"],
                                [f"SKU-{token}", "键盘", "1,299.00", "是"],
                                [f"SKU-{token}-2", "", "1", "maybe"]]))
    runner = crm_app.test_cli_runner()
    env = {"SCHEMADESK_LANG": "en"}
    result = runner.invoke(import_command, ["product", str(path), "--dry-run"], env=env)
    assert result.exit_code == 3, result.output
    assert "line 3:" in result.output and "1 to create" in result.output
    result = runner.invoke(import_command, ["product", str(path)], env=env)
    assert "1 created" in result.output
    result = runner.invoke(import_command, ["product", str(path)], env=env)
    assert "0 created, 0 updated, 1 unchanged" in result.output
    out = tmp_path / "products.xlsx"
    result = runner.invoke(export_command, ["product", str(out)], env=env)
    assert result.exit_code == 0 and out.is_file()
    result = runner.invoke(import_command, ["nosuch", str(path)], env=env)
    assert result.exit_code != 0 and "No entity named nosuch" in result.output
