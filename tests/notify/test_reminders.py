# ruff: noqa: E501
"""Reminders fire once, at the right time, for the right people — also under racing schedulers.

The CRM's rules (schema/crm.yaml): follow-up due (the day before next_follow_up,
to its owner), service-request SLA (24 h after creation while open, to the
manager role), customer birthday (yearly, to the owner). Times are in the
app's zone (Asia/Shanghai); passes are run with an explicit `now`.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.notify.reminders import run_pass
from app.state import state
from tests.notify.conftest import add_record, make_person, unique

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def utc(local: dt.datetime) -> dt.datetime:
    """A Shanghai wall-clock time as naive UTC (how the console stores times)."""
    return local.replace(tzinfo=SHANGHAI).astimezone(dt.UTC).replace(tzinfo=None)


def reset_runs(app: Flask) -> None:
    with app.app_context():
        table = state().models.system["reminder_run"]
        with state().db.engine.begin() as conn:
            conn.execute(sa.delete(table))


def sent(app: Flask, rule: str, record_id: int) -> list[dict[str, Any]]:
    with app.app_context():
        table = state().models.system["notification"]
        with state().db.engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(
                table.c.dedupe_key.like(f"reminder:{rule}:{record_id}:%"))
                .order_by(table.c.user_id)).mappings().all()
        return [dict(r) for r in rows]


def pass_at(app: Flask, now: dt.datetime) -> dict[str, int]:
    with app.app_context():
        return run_pass(now)


def a_far_day() -> dt.date:
    """A date no other test uses, so windows of tests never overlap."""
    return dt.date(2031, 1, 1) + dt.timedelta(days=random.randrange(3000))


def test_follow_up_reminder_fires_once_the_day_before_to_its_owner(crm_app: Flask) -> None:
    owner = make_person(crm_app, "operator")
    customer = add_record(crm_app, "customer", {"name": unique("C "), "owner": owner["employee_id"]})
    due = a_far_day()
    follow_up = add_record(crm_app, "follow_up", {
        "customer": customer, "content": "call back", "followed_at": dt.datetime(2026, 11, 1, 2),
        "next_follow_up": due, "owner": owner["employee_id"]})
    fire = utc(dt.datetime.combine(due - dt.timedelta(days=1), dt.time(0, 0)))
    reset_runs(crm_app)
    pass_at(crm_app, fire - dt.timedelta(minutes=2))
    pass_at(crm_app, fire - dt.timedelta(minutes=1))
    assert sent(crm_app, "follow_up_due", follow_up) == []
    counts = pass_at(crm_app, fire + dt.timedelta(minutes=1))
    rows = sent(crm_app, "follow_up_due", follow_up)
    assert [r["user_id"] for r in rows] == [owner["user_id"]]
    assert rows[0]["entity"] == "follow_up" and rows[0]["record_id"] == follow_up
    assert rows[0]["dedupe_key"] == f"reminder:follow_up_due:{follow_up}:{due.isoformat()}"
    assert counts["notified"] >= 1
    # later passes, and a pass re-run over the same window, add nothing
    pass_at(crm_app, fire + dt.timedelta(minutes=2))
    reset_runs(crm_app)
    pass_at(crm_app, fire + dt.timedelta(minutes=3))
    assert len(sent(crm_app, "follow_up_due", follow_up)) == 1


def test_two_schedulers_racing_notify_once(crm_app: Flask) -> None:
    owner = make_person(crm_app, "operator")
    customer = add_record(crm_app, "customer", {"name": unique("C "), "owner": owner["employee_id"]})
    due = a_far_day()
    ids = [add_record(crm_app, "follow_up", {
        "customer": customer, "content": f"n{i}", "followed_at": dt.datetime(2026, 11, 1, 2),
        "next_follow_up": due, "owner": owner["employee_id"]}) for i in range(5)]
    fire = utc(dt.datetime.combine(due - dt.timedelta(days=1), dt.time(0, 0)))
    reset_runs(crm_app)
    pass_at(crm_app, fire - dt.timedelta(minutes=1))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            with crm_app.app_context():
                barrier.wait()
                run_pass(fire + dt.timedelta(seconds=30))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    for follow_up in ids:
        assert len(sent(crm_app, "follow_up_due", follow_up)) == 1


def test_sla_escalates_open_requests_to_managers_after_24_hours(crm_app: Flask) -> None:
    owner = make_person(crm_app, "operator")
    manager = make_person(crm_app, "manager")
    customer = add_record(crm_app, "customer", {"name": unique("C "), "owner": owner["employee_id"]})
    open_one = add_record(crm_app, "service_request", {"title": unique("Broken "), "customer": customer})
    done_one = add_record(crm_app, "service_request", {"title": unique("Fixed "), "customer": customer})
    created = dt.datetime(2032, 1, 1) + dt.timedelta(minutes=random.randrange(500000))
    with crm_app.app_context():
        table = state().models.table("service_request")
        with state().db.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.id.in_([open_one, done_one]))
                         .values(created_at=created))
            conn.execute(sa.update(table).where(table.c.id == done_one).values(status="resolved"))
    reset_runs(crm_app)
    pass_at(crm_app, created + dt.timedelta(hours=23, minutes=59))
    assert sent(crm_app, "service_request_sla", open_one) == []
    pass_at(crm_app, created + dt.timedelta(hours=24, minutes=1))
    rows = sent(crm_app, "service_request_sla", open_one)
    assert manager["user_id"] in [r["user_id"] for r in rows]
    assert owner["user_id"] not in [r["user_id"] for r in rows]
    assert sent(crm_app, "service_request_sla", done_one) == []


def test_birthday_care_reminds_the_owner_every_year_on_the_day(crm_app: Flask) -> None:
    owner = make_person(crm_app, "operator")
    born = dt.date(1990, 1, 1) + dt.timedelta(days=random.randrange(365))
    if (born.month, born.day) == (2, 29):
        born = born.replace(day=28)
    customer = add_record(crm_app, "customer", {"name": unique("Birthday "), "owner": owner["employee_id"],
                                                "birthday": born})
    for year in (2033, 2034):
        day = born.replace(year=year)
        midnight = utc(dt.datetime.combine(day, dt.time(0, 0)))
        reset_runs(crm_app)
        pass_at(crm_app, midnight - dt.timedelta(minutes=1))
        pass_at(crm_app, midnight + dt.timedelta(minutes=1))
        pass_at(crm_app, midnight + dt.timedelta(minutes=2))
        keys = [r["dedupe_key"] for r in sent(crm_app, "customer_birthday", customer)]
        assert f"reminder:customer_birthday:{customer}:{day.isoformat()}" in keys
    assert len(sent(crm_app, "customer_birthday", customer)) == 2


def test_a_quiet_pass_asks_nothing_of_date_rules(crm_app: Flask) -> None:
    """Between two midnights a date rule needs no query: statements are counted."""
    from app.notify.reminders import due_query
    from app.schema.automation import ReminderSpec

    with crm_app.app_context():
        rule = next(r for r in state().spec.reminders if r.name == "follow_up_due")
        noon = utc(dt.datetime(2035, 6, 1, 12, 0))
        assert due_query(rule, noon, noon + dt.timedelta(minutes=1)) is None
        assert due_query(rule, noon, noon + dt.timedelta(days=1)) is not None
        sla = ReminderSpec("x", "service_request", "created_at", 86400, notify_role="manager")
        assert due_query(sla, noon, noon + dt.timedelta(minutes=1)) is not None


def test_run_py_scheduler_thread_runs_passes_without_redis(app_factory: Any) -> None:
    """Without REDIS_URL, run.py's thread runs a pass every REMINDER_INTERVAL seconds."""
    import time

    from app.notify.reminders import start_inline_scheduler
    from tests.conftest import CRM

    app = app_factory(CRM, "sqlite", REMINDER_INTERVAL=1)
    thread = start_inline_scheduler(app)
    assert thread is not None and thread.is_alive()
    seen: set[Any] = set()
    deadline = time.monotonic() + 20
    while len(seen) < 3 and time.monotonic() < deadline:
        with app.app_context():
            runs = state().models.system["reminder_run"]
            with state().db.engine.connect() as conn:
                seen.update(conn.execute(sa.select(runs.c.last_run_at).where(
                    runs.c.rule == "follow_up_due")).scalars())
        time.sleep(0.3)
    assert len(seen) >= 3  # three passes, a second apart
    assert start_inline_scheduler(app_factory(CRM, "sqlite", REDIS_URL="redis://127.0.0.1:1/0")) is None
