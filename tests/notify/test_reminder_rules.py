"""Every declared reminder of the shipped schemas (CRM, library) runs on every engine.

Generated from the schemas: each rule's due query is built for a window that
crosses a midnight and executed, so a rule whose path, condition or date the
database cannot answer fails here. The library's loan reminder then fires for
a loan due tomorrow, to the reader's account, and not for a returned one.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.notify.reminders import due_query, run_pass
from app.records.service import records
from app.state import state
from tests.notify.conftest import unique

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def every_rule_query_runs(app: Flask) -> None:
    with app.app_context():
        rules = state().spec.reminders
        assert rules, "the shipped schemas declare reminders"
        noon = dt.datetime(2030, 6, 1, 4, 0)
        for rule in rules:
            stmt = due_query(rule, noon - dt.timedelta(days=2), noon)
            assert stmt is not None, rule.name
            rows = state().db.session.execute(stmt).all()
            assert all(len(row) == 3 for row in rows)
        state().db.session.remove()


def test_every_crm_rule_query_runs(crm_app: Flask) -> None:
    every_rule_query_runs(crm_app)


def test_every_library_rule_query_runs(library_app: Flask) -> None:
    every_rule_query_runs(library_app)


def test_library_loan_due_tomorrow_reminds_its_reader(library_app: Flask) -> None:
    with library_app.app_context():
        sm = library_app.appbuilder.sm
        name = unique("reader-")
        user = sm.add_user(name, "R", "T", f"{name}@example.com", sm.find_role("reader"),
                           password="Admin-Pass-2024!")
        branch = records("branch", None).create({"name": unique("Branch ")})
        book = records("book", None).create({"title": "三体", "branch": branch.id})
        member = records("member", None).create({"name": name, "card_no": unique("C"),
                                                 "account": user.id})
        due = dt.date(2036, 1, 1) + dt.timedelta(days=random.randrange(2000))
        loans = [records("loan", None).create({
            "loan_no": unique("L"), "book": book.id, "member": member.id,
            "borrowed_at": dt.datetime(2035, 12, 1, 2), "due_date": due, "status": status})
            for status in ("borrowed", "returned")]
        ids = [loan.id for loan in loans]
        user_id = user.id
        with state().db.engine.begin() as conn:
            conn.execute(sa.delete(state().models.system["reminder_run"]))
        fire = dt.datetime.combine(due - dt.timedelta(days=1), dt.time(0, 0), SHANGHAI)
        fire = fire.astimezone(dt.UTC).replace(tzinfo=None)
        run_pass(fire - dt.timedelta(minutes=1))
        run_pass(fire + dt.timedelta(minutes=1))
        state().db.session.remove()  # MariaDB: no snapshot older than the passes
        table = state().models.system["notification"]
        got: dict[Any, list[int]] = {}
        with state().db.engine.connect() as conn:
            for loan_id in ids:
                got[loan_id] = list(conn.execute(sa.select(table.c.user_id).where(
                    table.c.dedupe_key == f"reminder:loan_due:{loan_id}:{due.isoformat()}"))
                    .scalars())
    assert got == {ids[0]: [user_id], ids[1]: []}
