"""Imports: encodings, header matching, cell parsing, line numbers, dry run, upsert."""

from __future__ import annotations

import csv
import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_babel import force_locale

from app.io.importer import import_file
from app.state import state
from tests.conftest import phone_in


def phone() -> str:
    return "139" + str(uuid.uuid4().int)[:8]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def customers(app: Flask, phones: list[str]) -> dict[str, dict]:
    with app.app_context():
        table = state().models.table("customer")
        rows = state().db.session.execute(
            sa.select(table).where(phone_in(phones))
        ).mappings().all()
        state().db.session.remove()
        return {r["phone"]: dict(r) for r in rows}


def gbk_file(tmp_path: Path, phones: list[str]) -> Path:
    rows = [
        ["名称", "类型", "电话", "信用额度", "来 源", "不存在的列"],
        ["北京华信科技", "企业", phones[0], "1,234.50", "", "x"],
        ["", "个人", phones[1], "10", "", ""],              # line 3: name missing
        ["上海星辰", "外星人", phones[2], "abc", "", ""],       # line 4: bad enum, bad number
        ["广州南方", "个人", phones[3], "-5", "", ""],          # line 5: below min
        ["深圳前海", "company", phones[4], "0", "", ""],
    ]
    return write_csv(tmp_path / "客户.csv", rows, encoding="gbk")


def test_gbk_csv_with_chinese_headers_imports_good_rows_and_reports_bad_lines(
    crm_app: Flask, tmp_path: Path
) -> None:
    phones = [phone() for _ in range(5)]
    path = gbk_file(tmp_path, phones)
    with crm_app.app_context(), force_locale("en"):
        result = import_file("customer", path)
    assert result.encoding == "gb18030"
    assert result.created == 2 and result.rejected == 3
    assert result.unknown_columns == ["不存在的列"]
    by_line = {p.line: " ".join(p.reasons) for p in result.problems}
    assert set(by_line) == {3, 4, 5}
    assert "Name" in by_line[3] and "required" in by_line[3]
    assert "not one of the choices" in by_line[4] and "Not a number" in by_line[4]
    assert "at least 0" in by_line[5]
    saved = customers(crm_app, phones)
    assert set(saved) == {phones[0], phones[4]}
    assert saved[phones[0]]["credit"] == Decimal("1234.50")
    assert saved[phones[0]]["kind"] == "company"
    # the error report holds the original rows with their line and a reason
    with open(result.error_file, encoding="utf-8-sig") as fh:
        report = list(csv.reader(fh))
    assert report[0][0] == "Line" and report[0][-1] == "Reason"
    assert [r[0] for r in report[1:]] == ["3", "4", "5"]
    assert report[2][1] == "上海星辰"

    before = customers(crm_app, phones)
    with crm_app.app_context():
        again = import_file("customer", path)
    assert again.created == 0 and again.updated == 0 and again.unchanged == 2
    assert customers(crm_app, phones) == before


def test_dry_run_writes_nothing(crm_app: Flask, tmp_path: Path) -> None:
    phones = [phone() for _ in range(5)]
    path = gbk_file(tmp_path, phones)
    with crm_app.app_context():
        result = import_file("customer", path, dry_run=True)
    assert (result.created, result.rejected) == (2, 3)
    assert result.error_file is not None
    assert customers(crm_app, phones) == {}


def test_upsert_updates_changed_rows_and_reports_duplicate_keys(
    crm_app: Flask, tmp_path: Path
) -> None:
    p1, p2 = phone(), phone()
    first = write_csv(tmp_path / "a.csv", [["name", "phone", "points"], ["One", p1, "1"],
                                            ["Two", p2, "2"]])
    with crm_app.app_context():
        assert import_file("customer", first).created == 2
    second = write_csv(tmp_path / "b.csv", [["Name", "Phone", "Points"], ["One", p1, "1"],
                                             ["Two (renamed)", p2, "2"], ["Dup", p2, "3"]])
    with crm_app.app_context(), force_locale("en"):
        result = import_file("customer", second)
    assert (result.created, result.updated, result.unchanged, result.rejected) == (0, 1, 1, 1)
    assert result.problems[0].line == 4
    assert "also on line 3" in result.problems[0].reasons[0]
    assert customers(crm_app, [p2])[p2]["name"] == "Two (renamed)"


def test_utf8_bom_semicolons_and_every_parser(crm_app: Flask, tmp_path: Path) -> None:
    tag = f"vip-{uuid.uuid4().hex[:6]}"
    tag2 = f"key-{uuid.uuid4().hex[:6]}"
    with crm_app.app_context():
        tags = state().models.table("tag")
        state().db.session.execute(sa.insert(tags), [
            {"name": tag, "color": "red", "created_at": dt.datetime.now(),
             "updated_at": dt.datetime.now()},
            {"name": tag2, "color": "red", "created_at": dt.datetime.now(),
             "updated_at": dt.datetime.now()},
        ])
        state().db.session.commit()
    order_no = f"SO-{uuid.uuid4().hex[:8]}"
    p = phone()
    path = write_csv(tmp_path / "c.csv", [["名称", "Industry", "电话", "标签"],
                                          ["Acme", "金融", p, f"{tag}、{tag2}"]],
                     encoding="utf-8-sig")
    text = path.read_text(encoding="utf-8-sig").replace(",", ";")
    path.write_text(text, encoding="utf-8-sig")
    with crm_app.app_context():
        result = import_file("customer", path)
        assert result.created == 1, result.problems
        customer = state().db.session.execute(
            sa.select(state().models.model("customer")).where(
                phone_in(p))
        ).scalar_one()
        assert customer.industry == "finance"
        assert sorted(t.name for t in customer.tags) == sorted([tag, tag2])
        state().db.session.remove()
    orders = write_csv(tmp_path / "o.csv", [
        ["订单号", "客户", "数量", "金额", "下单日期", "状态"],
        [order_no, "Acme", "3", "12,345.6", "2024/3/5", "Paid"],
        [order_no + "b", "Acme", "1", "1", "45356", "已付款"],
        [order_no + "c", "Nobody here", "1", "1", "2024-02-30", "x"],
    ])
    with crm_app.app_context(), force_locale("en"):
        result = import_file("sales_order", orders)
        assert result.created == 2
        assert result.problems[0].line == 4
        reasons = " ".join(result.problems[0].reasons)
        assert "No Customer named 'Nobody here'" in reasons and "Not a date" in reasons
        table = state().models.table("sales_order")
        rows = {r.order_no: r for r in state().db.session.execute(
            sa.select(table).where(table.c.order_no.like(order_no + "%")))}
        assert rows[order_no].ordered_at == dt.date(2024, 3, 5)
        assert rows[order_no].amount == Decimal("12345.60")
        assert rows[order_no + "b"].ordered_at == dt.date(2024, 3, 5)  # Excel serial
        assert rows[order_no].status == "paid" and rows[order_no + "b"].status == "paid"
        state().db.session.remove()


@pytest.mark.parametrize(
    ("ftype", "raw", "expected"),
    [
        ("boolean", "是", True), ("boolean", "否", False), ("boolean", "Yes", True),
        ("boolean", "0", False), ("date", "2024-03-05", dt.date(2024, 3, 5)),
        ("date", "2024/3/5", dt.date(2024, 3, 5)), ("date", 45356, dt.date(2024, 3, 5)),
        ("datetime", "2024-03-05 14:30", dt.datetime(2024, 3, 5, 14, 30)),
        ("datetime", "2024/3/5 14:30:15", dt.datetime(2024, 3, 5, 14, 30, 15)),
        ("decimal", "1,234,567.89", Decimal("1234567.89")), ("integer", "1,000", 1000),
        ("integer", 7.0, 7), ("string", 13800138000.0, "13800138000"),
    ],
)
def test_cells_are_read_like_a_person_would(ftype: str, raw: object, expected: object) -> None:
    from app.records.values import parse_cell
    from app.schema.spec import FieldSpec, Label

    f = FieldSpec(name="x", type=ftype, label=Label("X", "X"))
    assert parse_cell(raw, f) == expected


def test_xlsx_import_reads_first_or_named_sheet(crm_app: Flask, tmp_path: Path) -> None:
    from openpyxl import Workbook

    p1, p2 = phone(), phone()
    workbook = Workbook()
    workbook.active.append(["名称", "电话", "创建日期?"])
    workbook.active.append(["First sheet", int(p1), None])
    other = workbook.create_sheet("第二页")
    other.append(["Name", "Phone", "Credit limit"])
    other.append(["Second sheet", p2, 5.0])
    path = tmp_path / "book.xlsx"
    workbook.save(path)
    with crm_app.app_context():
        assert import_file("customer", path).created == 1
        assert import_file("customer", path, sheet="第二页").created == 1
    saved = customers(crm_app, [p1, p2])
    assert saved[p1]["name"] == "First sheet" and saved[p2]["credit"] == 5
