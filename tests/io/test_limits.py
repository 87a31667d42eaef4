"""Hostile uploads are refused with a message, before they cost memory or time."""

from __future__ import annotations

import io
import secrets
import time
import tracemalloc
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from openpyxl import Workbook

from app.io.reader import MB, FileError, Limits, TooLong, open_table
from app.jobs import wait

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
        'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.'
        'openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'),
    "_rels/.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>'),
    "xl/workbook.xml": (
        f'<workbook xmlns="{NS}" xmlns:r="{REL}"><sheets>'
        '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
        '</Relationships>'),
    "xl/worksheets/sheet1.xml": (
        f'<worksheet xmlns="{NS}"><dimension ref="A1:A2"/><sheetData>'
        '<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
        '<row r="2"><c r="A2" t="s"><v>1</v></c></row></sheetData></worksheet>'),
}


def workbook(path: Path, shared_strings: Any = None,
             cells: tuple[str, str] = ("name", "x")) -> Path:
    """A minimal valid XLSX: column A holds `cells` (shared strings 0 and 1), then whatever
    `shared_strings(fh)` writes into the shared-strings part."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in PARTS.items():
            archive.writestr(name, text)
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
            fh.write(f'<sst xmlns="{NS}">'.encode())
            for text in cells:
                fh.write(f"<si><t>{text}</t></si>".encode())
            if shared_strings is not None:
                shared_strings(fh)
            fh.write(b"</sst>")
    return path


def zip_bomb(path: Path, megabytes: int) -> Path:
    """`megabytes` MB of shared strings that deflate about 450 times (openpyxl loads them all)."""
    chunk = (b"<si><t>" + b"a" * 1032 + b"</t></si>") * 1000

    def write(fh: Any) -> None:
        for _ in range(megabytes):
            fh.write(chunk)

    return workbook(path, write)


def test_zip_bomb_xlsx_is_refused_before_openpyxl_opens_it(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "bomb.xlsx", 300)
    assert bomb.stat().st_size < 1 * MB  # 300 MB inside
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(FileError) as refused:
            open_table(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 2
    assert peak < 5 * MB  # openpyxl would have held some 600 MB
    assert "IMPORT_MAX_UNCOMPRESSED_MB" in refused.value.message
    assert refused.value.params == {"size": "300", "max": "200"}


def test_member_packed_tighter_than_any_spreadsheet_is_refused(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "small-bomb.xlsx", 20)  # under every size limit
    with pytest.raises(FileError) as refused:
        open_table(bomb)
    assert "xl/sharedStrings.xml" == refused.value.params["member"]
    assert refused.value.params["ratio"] > 100


def test_shared_strings_over_their_limit_are_refused_by_streaming(tmp_path: Path) -> None:
    def random_text(fh: Any) -> None:  # packs about 2:1, like real text
        for _ in range(2000):
            fh.write(f"<si><t>{secrets.token_hex(512)}</t></si>".encode())

    path = workbook(tmp_path / "wordy.xlsx", random_text)
    limits = Limits(shared_strings_bytes=1 * MB)
    with pytest.raises(FileError) as refused:
        open_table(path, limits=limits)
    assert "IMPORT_MAX_SHARED_STRINGS_MB" in refused.value.message
    assert [row for _, row in open_table(path).rows] == [["x"]]  # fine under the default


def test_too_many_rows_are_refused(tmp_path: Path) -> None:
    book = Workbook()
    for i in range(11):
        book.active.append([f"row {i}"])
    book.save(tmp_path / "rows.xlsx")
    (tmp_path / "rows.csv").write_text("\n".join(f"row {i}" for i in range(11)) + "\n")
    limits = Limits(rows=5)
    with pytest.raises(FileError, match="IMPORT_MAX_ROWS"):
        open_table(tmp_path / "rows.xlsx", limits=limits)  # its dimension says so, at once
    table = open_table(tmp_path / "rows.csv", limits=limits)
    with pytest.raises(FileError, match="IMPORT_MAX_ROWS"):
        list(table.rows)
    assert len(list(open_table(tmp_path / "rows.csv", limits=Limits(rows=10)).rows)) == 10


def big_cell_csv(path: Path) -> Path:
    cell = "长" * (10 * MB // 3)  # 10 MB of UTF-8
    path.write_text(f"名称,备注\n短,ok\n长,{cell}\n后,ok\n", encoding="utf-8")
    return path


def test_csv_cell_over_the_limit_is_marked_not_read(tmp_path: Path) -> None:
    rows = list(open_table(big_cell_csv(tmp_path / "big.csv")).rows)
    assert [line for line, _ in rows] == [2, 3, 4]
    marker = rows[1][1][1]
    assert isinstance(marker, TooLong) and marker.length == 10 * MB // 3
    assert rows[0][1] == ["短", "ok"] and rows[2][1] == ["后", "ok"]


def test_xlsx_cell_over_the_limit_is_marked_not_read(tmp_path: Path) -> None:
    path = workbook(tmp_path / "long.xlsx", cells=("remark", "b" * 40000))
    (line, cells), = list(open_table(path).rows)
    assert line == 2 and isinstance(cells[-1], TooLong)


def test_import_rejects_only_the_line_with_the_long_cell(sqlite_crm_app: Flask,
                                                          tmp_path: Path) -> None:
    from app.io.importer import import_file

    with sqlite_crm_app.app_context():
        result = import_file("customer", big_cell_csv(tmp_path / "big.csv"), dry_run=True)
    assert (result.created, result.rejected) == (2, 1)
    assert result.problems[0].line == 3
    assert "too long" in result.problems[0].reasons[0]


def upload(client: Any, path: Path) -> Any:
    return client.post("/customer/import", data={"file": (io.BytesIO(path.read_bytes()),
                                                          path.name), "encoding": ""},
                       content_type="multipart/form-data")


def test_preview_of_a_csv_with_a_10_mb_cell_is_a_message_not_a_500(
    sqlite_crm_app: Flask, sqlite_admin_client: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sqlite_crm_app.config, "IMPORT_PREVIEW_SYNC_BYTES", 100 * MB)
    response = upload(sqlite_admin_client, big_cell_csv(tmp_path / "big.csv"))
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        response = sqlite_admin_client.get(response.location)
    page = response.data.decode()
    assert "The cell is too long" in page  # line 3 is a problem; lines 2 and 4 would import


def test_large_file_is_previewed_by_a_job_and_the_page_waits(
    sqlite_crm_app: Flask, sqlite_admin_client: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sqlite_crm_app.config, "IMPORT_PREVIEW_SYNC_BYTES", 200)
    token = uuid.uuid4().hex[:8]
    lines = ["名称,电话"] + [f"{token} {i},13{i:09d}" for i in range(30)]
    path = tmp_path / "large.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    started = time.perf_counter()
    response = upload(sqlite_admin_client, path)
    assert time.perf_counter() - started < 2
    assert response.status_code == 302 and "run=" in response.location
    run_id = int(response.location.split("run=")[1].split("&")[0])
    waiting = sqlite_admin_client.get(response.location)
    if "sd-created" not in waiting.data.decode():
        assert waiting.headers.get("Refresh") == "2"
        assert "checked in the background" in waiting.data.decode()
    with sqlite_crm_app.app_context():
        assert wait(run_id, timeout=60)["status"] == "done"
    page = sqlite_admin_client.get(response.location).data.decode()
    assert 'sd-created">30<' in page and 'name="token"' in page
    confirm_token = page.split('name="token" value="')[1].split('"')[0]
    confirmed = sqlite_admin_client.post("/customer/import/confirm",
                                         data={"token": confirm_token})
    assert confirmed.status_code == 302
    other = sqlite_admin_client.get(response.location.replace(f"run={run_id}", "run=999999"))
    assert other.status_code == 404
