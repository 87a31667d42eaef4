"""Reminder scheduler cost at 100k follow-ups: time and statements of one pass, next to bare SQL.

Run: python tests/bench/bench_reminders.py [--backend postgresql] [--n 100000]

The CRM's rules run (follow-up due the day before, service-request SLA, customer
birthday). Follow-ups are spread over a year (about n/365 a day), all owned by
one employee. Three passes are timed:

- a quiet pass (a minute between two midnights): what runs every minute;
- a midnight pass (the window crosses one day's reminder time): about n/365
  follow-ups notified;
- the bare SQL of the follow-up rule's due query for the same day, on the same
  connection kind (what the database alone needs), with its plan's first line.

Statements are counted at the engine (every statement the pass sends).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
BASE_DAY = dt.date(2031, 1, 1)


def utc(day: dt.date) -> dt.datetime:
    """Local midnight (Asia/Shanghai) of `day` as naive UTC."""
    return dt.datetime.combine(day, dt.time(0, 0), SHANGHAI).astimezone(dt.UTC).replace(
        tzinfo=None)


def seed(n: int) -> None:
    """One account + employee, 100 customers, `n` follow-ups spread over 365 days."""
    import sqlalchemy as sa
    from flask import current_app

    from app.records import records
    from app.state import state

    sm = current_app.appbuilder.sm  # type: ignore[attr-defined]
    user = sm.add_user("bench-owner", "B", "O", "bench@example.com", sm.find_role("operator"),
                       password="Bench-Pass-2024!")
    employee = records("employee", None).create(
        {"name": "Bench", "employee_no": "B-1", "account": user.id})
    engine = state().db.engine
    customers = state().models.table("customer")
    follow_ups = state().models.table("follow_up")
    now = dt.datetime(2026, 11, 1)
    with engine.begin() as conn:
        conn.execute(sa.insert(customers), [
            {"name": f"Bench customer {i}", "kind": "company", "level": "c", "status": "active",
             "points": 0, "membership_level": "none", "owner_id": employee.id,
             "created_at": now, "updated_at": now, "version": 1} for i in range(100)])
        customer_ids = list(conn.execute(sa.select(customers.c.id)).scalars())
        batch = []
        for i in range(n):
            batch.append({"customer_id": customer_ids[i % len(customer_ids)], "method": "phone",
                          "content": f"call {i}", "followed_at": now,
                          "next_follow_up": BASE_DAY + dt.timedelta(days=i % 365),
                          "owner_id": employee.id, "created_at": now, "updated_at": now,
                          "version": 1})
            if len(batch) == 5000:
                conn.execute(sa.insert(follow_ups), batch)
                batch = []
        if batch:
            conn.execute(sa.insert(follow_ups), batch)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    state().db.session.remove()


class StatementCounter:
    """Counts the statements sent through an engine while active."""

    def __init__(self, engine: Any):
        self.engine = engine
        self.count = 0
        self.statements: list[str] = []

    def __enter__(self) -> StatementCounter:
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_: Any) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.count += 1
        self.statements.append(statement.split()[0] + " " + " ".join(statement.split()[1:4]))


def timed_pass(now: dt.datetime, last: dt.datetime) -> tuple[float, int, int]:
    """One pass over (last, now]: (ms, statements, notifications written)."""
    import sqlalchemy as sa

    from app.notify.reminders import run_pass
    from app.state import state

    runs = state().models.system["reminder_run"]
    with state().db.engine.begin() as conn:
        conn.execute(sa.update(runs).values(last_run_at=last))
    with StatementCounter(state().db.engine) as counter:
        started = time.perf_counter()
        counts = run_pass(now)
        elapsed = (time.perf_counter() - started) * 1000
    return elapsed, counter.count, counts["notified"]


def bare_sql(day: dt.date, repeat: int = 5) -> tuple[float, int, str]:
    """The follow-up rule's due query alone: (median ms, rows, first plan line)."""
    import sqlalchemy as sa

    from app.notify.reminders import due_query
    from app.state import state

    rule = next(r for r in state().spec.reminders if r.name == "follow_up_due")
    fire = utc(day - dt.timedelta(days=1))
    stmt = due_query(rule, fire - dt.timedelta(minutes=1), fire + dt.timedelta(minutes=1))
    engine = state().db.engine
    times = []
    rows = 0
    with engine.connect() as conn:
        for _ in range(repeat):
            started = time.perf_counter()
            rows = len(conn.execute(stmt).all())
            times.append((time.perf_counter() - started) * 1000)
        plan = ""
        if engine.dialect.name == "postgresql":
            compiled = stmt.compile(engine, compile_kwargs={"literal_binds": True})
            lines = conn.exec_driver_sql(f"EXPLAIN {compiled}").scalars().all()
            plan = next((line.strip() for line in lines if "Scan" in line), lines[0])
        conn.execute(sa.text("SELECT 1"))
    return statistics.median(times), rows, plan


def measure(backend: str, n: int, days: int) -> dict[str, Any]:
    from tests.conftest import CRM, build_app, new_database

    tmp = Path(tempfile.mkdtemp(prefix="bench_reminders_"))
    app = build_app(CRM, new_database(backend, tmp), tmp / "instance")
    with app.app_context():
        started = time.perf_counter()
        seed(n)
        seeded = time.perf_counter() - started
        from app.notify.reminders import run_pass

        run_pass(utc(BASE_DAY) - dt.timedelta(days=400))  # each rule's reminder_run row
        quiet, midnight = [], []
        for k in range(days):
            day = BASE_DAY + dt.timedelta(days=10 + k)
            fire = utc(day - dt.timedelta(days=1))  # follow-ups due on `day`
            noon = fire + dt.timedelta(hours=12)
            quiet.append(timed_pass(noon + dt.timedelta(minutes=1), noon))
            midnight.append(timed_pass(fire + dt.timedelta(seconds=30),
                                       fire - dt.timedelta(seconds=30)))
        sql_ms, rows, plan = bare_sql(BASE_DAY + dt.timedelta(days=40))
    return {"seeded_s": seeded, "quiet": quiet, "midnight": midnight, "sql_ms": sql_ms,
            "sql_rows": rows, "plan": plan}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="postgresql")
    parser.add_argument("--n", type=int, default=100_000, help="follow-ups")
    parser.add_argument("--days", type=int, default=5, help="midnights (and quiet minutes) timed")
    args = parser.parse_args()

    from tests.conftest import drop_databases

    try:
        r = measure(args.backend, args.n, args.days)
    finally:
        drop_databases()

    def med(items: list[tuple[float, int, int]], i: int) -> float:
        return statistics.median(x[i] for x in items)

    print(f"reminder scheduler, {args.backend}, {args.n} follow-ups over 365 days "
          f"(seeded in {r['seeded_s']:.0f} s), CRM rules: follow-up due, SLA, birthday")
    print(f"{'':<34}{'ms':>10}{'statements':>12}{'notified':>10}")
    print(f"{'quiet pass (every minute)':<34}{med(r['quiet'], 0):>10.1f}"
          f"{med(r['quiet'], 1):>12.0f}{med(r['quiet'], 2):>10.0f}")
    print(f"{'midnight pass (a day comes due)':<34}{med(r['midnight'], 0):>10.1f}"
          f"{med(r['midnight'], 1):>12.0f}{med(r['midnight'], 2):>10.0f}")
    print(f"{'bare SQL of the due query':<34}{r['sql_ms']:>10.1f}{1:>12}{r['sql_rows']:>10}")
    if r["plan"]:
        print(f"plan: {r['plan']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
