"""The reminder scheduler (提醒): every minute, notify the records whose time came.

A pass looks at the window since the rule's last pass (`reminder_run`) and asks
the database, with ONE statement per rule, for the records whose reminder time
falls in it: a range on the rule's (indexed) date column, the rule's `when`,
and the recipient's account joined in. Each event is notified under the
dedupe key `reminder:<rule>:<record>:<event date>`, so it fires once ever —
also when two schedulers run the same pass at once (the rule's `reminder_run`
row is locked for the pass, and the key is the final guard).

Who runs passes: with REDIS_URL, RQ's scheduler (`schemadesk worker
--with-scheduler`) runs `tick` at every slot, each tick scheduling the next, the
slot's job id shared by all processes (as BACKUP_SCHEDULE does); without Redis,
`start_inline_scheduler` (called by run.py) runs a thread in the web process.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Session

from app.i18n import N_
from app.models import utcnow
from app.schema.automation import ReminderSpec

log = logging.getLogger(__name__)
QUEUE = "default"
DEFAULT_INTERVAL = 60
FIRST_WINDOW = dt.timedelta(hours=24)  # a rule's first pass looks back one day
MAX_WINDOW = dt.timedelta(days=7)  # after a long stop, at most a week is caught up
DEFAULT_MESSAGE = N_("Reminder: %(record)s (%(field)s: %(date)s)")


def interval() -> int:
    """Seconds between passes (REMINDER_INTERVAL, default 60)."""
    from app.notify.mail import setting

    return int(setting("REMINDER_INTERVAL") or DEFAULT_INTERVAL)


# -- one pass -------------------------------------------------------------------


def run_pass(now: dt.datetime | None = None) -> dict[str, int]:
    """Run every reminder rule once for the window ending `now` (UTC); return counts."""
    from app.state import state

    st = state()
    now = now or utcnow()
    counts = {"rules": 0, "records": 0, "notified": 0}
    for rule in st.spec.reminders:
        found, notified = _run_rule_retrying(st.db.engine, rule, now)
        counts["rules"] += 1
        counts["records"] += found
        counts["notified"] += notified
    return counts


def _run_rule_retrying(engine: sa.Engine, rule: ReminderSpec, now: dt.datetime
                       ) -> tuple[int, int]:
    """`run_rule` in a session of its own; a deadlock between racing passes is retried."""
    for attempt in range(3):
        with Session(engine) as session:
            try:
                return run_rule(session, rule, now)
            except sa.exc.OperationalError as exc:
                session.rollback()
                if "deadlock" not in str(exc).lower() or attempt == 2:
                    raise
                time.sleep(0.05 * (attempt + 1))
    return 0, 0  # pragma: no cover - the loop returns or raises


def run_rule(session: Session, rule: ReminderSpec, now: dt.datetime) -> tuple[int, int]:
    """One rule's pass in one transaction; return (records due, notifications written)."""
    last = _lock_window(session, rule, now)
    rows: list[Any] = []
    if last < now:
        stmt = due_query(rule, last, now)
        if stmt is not None:
            rows = list(session.execute(stmt))
    notified = _notify_rows(session, rule, rows, now) if rows else 0
    table = _tables()["reminder_run"]
    session.execute(sa.update(table).where(table.c.rule == rule.name)
                    .where(table.c.last_run_at < now).values(last_run_at=now))
    session.commit()
    return len(rows), notified


def _tables() -> dict[str, sa.Table]:
    from app.state import state

    return state().models.system


def _lock_window(session: Session, rule: ReminderSpec, now: dt.datetime) -> dt.datetime:
    """Lock the rule's `reminder_run` row for this pass; return the window's start.

    A second scheduler running the same pass waits here and then finds the
    window already covered.
    """
    from app.notify import _insert_ignore

    table = _tables()["reminder_run"]
    locked = sa.select(table.c.last_run_at).where(table.c.rule == rule.name).with_for_update()
    last = session.execute(locked).scalar()
    if last is None:  # the rule's first pass (MariaDB: lock first, insert only if missing)
        _insert_ignore(session, table, {"rule": rule.name, "last_run_at": now - FIRST_WINDOW})
        last = session.execute(locked).scalar_one()
    return max(last, now - MAX_WINDOW)


# -- the due query ---------------------------------------------------------------


def app_zone() -> ZoneInfo:
    from app.state import state

    return ZoneInfo(state().spec.timezone)


def local_date(moment: dt.datetime) -> dt.date:
    """The calendar date in the app's time zone at the UTC moment `moment`."""
    return moment.replace(tzinfo=dt.UTC).astimezone(app_zone()).date()


def due_query(rule: ReminderSpec, last: dt.datetime, now: dt.datetime) -> Any | None:
    """SELECT id, event value, recipient account of the records due in (last, now].

    None when no reminder time can fall in the window (a date rule between two
    midnights): the pass then costs no statement for this rule.
    """
    from app.state import state

    st = state()
    entity = st.spec.entity(rule.entity)
    table = st.models.table(rule.entity)
    column = _date_column(table, entity, rule.date)
    offset = dt.timedelta(seconds=rule.offset)
    is_date = entity.has_field(rule.date) and entity.field(rule.date).type == "date"
    if is_date:
        # a date's reminder is at its local midnight + offset: it falls in the
        # window when the date is in (local_date(last - offset), local_date(now - offset)]
        first, final = local_date(last - offset), local_date(now - offset)
        if final <= first:
            return None
        where = (_yearly_clause(column, first, final) if rule.yearly
                 else sa.and_(column > first, column <= final))
    else:
        where = sa.and_(column > last - offset, column <= now - offset)
    recipient, joined = _recipient(rule, entity, table)
    stmt = sa.select(table.c.id, column, recipient).select_from(joined).where(where)
    if rule.when is not None:
        from app.records.scope import ScopeCompiler

        stmt = stmt.where(ScopeCompiler(st.spec, 0).compile(entity, rule.when))
    return stmt.order_by(table.c.id)


def _date_column(table: sa.Table, entity: Any, name: str) -> Any:
    if name in ("created_at", "updated_at"):
        return table.c[name]
    return table.c[entity.field(name).column_name]


def _yearly_clause(column: Any, first: dt.date, final: dt.date) -> Any:
    """Month and day of `column` on one of the days in (first, final]."""
    days: set[tuple[int, int]] = set()
    day = first + dt.timedelta(days=1)
    while day <= final and len(days) < 366:
        days.add((day.month, day.day))
        if day.month == 2 and day.day == 28 and not _leap(day.year):
            days.add((2, 29))  # born on 29 February: reminded on the 28th
        day += dt.timedelta(days=1)
    month, dom = sa.extract("month", column), sa.extract("day", column)
    return sa.or_(*(sa.and_(month == m, dom == d) for m, d in sorted(days)))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _recipient(rule: ReminderSpec, entity: Any, table: sa.Table) -> tuple[Any, Any]:
    """The column holding the recipient's account id, and the FROM with its joins."""
    from app.state import state

    if rule.notify_role is not None:
        return sa.null().label("recipient"), table
    st = state()
    current, current_table, joined = entity, table, table
    for i, name in enumerate(rule.notify_path):
        if name in ("created_by", "updated_by"):
            return current_table.c[f"{name}_id"].label("recipient"), joined
        f = current.field(name)
        column = current_table.c[f.column_name]
        if f.type == "user":
            return column.label("recipient"), joined
        target = st.spec.entity(f.to)
        alias = st.models.table(target.name).alias(f"sd_r{i}")
        joined = joined.outerjoin(alias, column == alias.c.id)
        current, current_table = target, alias
    user_field = current.user_field
    return current_table.c[user_field.column_name].label("recipient"), joined


# -- notifying --------------------------------------------------------------------


def role_members(session: Session, role: str) -> list[int]:
    """The active accounts holding `role` (one statement)."""
    user = sa.table("ab_user", sa.column("id"), sa.column("active"))
    link = sa.table("ab_user_role", sa.column("user_id"), sa.column("role_id"))
    role_table = sa.table("ab_role", sa.column("id"), sa.column("name"))
    stmt = (sa.select(user.c.id).join(link, link.c.user_id == user.c.id)
            .join(role_table, role_table.c.id == link.c.role_id)
            .where(role_table.c.name == role).where(user.c.active.is_(True)))
    return sorted(set(session.execute(stmt).scalars()))


def _notify_rows(session: Session, rule: ReminderSpec, rows: list[Any],
                 now: dt.datetime) -> int:
    from app.notify import Notice, notify_many
    from app.state import state

    entity = state().spec.entity(rule.entity)
    members = role_members(session, rule.notify_role) if rule.notify_role else None
    field_label = _field_label(entity, rule.date)
    notices = []
    for record_id, value, recipient in rows:
        event = event_of(rule, value, now)
        params: dict[str, Any] = {"field": field_label, "date": event, "rule": rule.name}
        if rule.label is not None:
            params["_text"] = {"en": rule.label.en, "zh": rule.label.zh}
        recipients = members if members is not None else [recipient]
        notices.append(Notice(tuple(recipients), DEFAULT_MESSAGE, params, rule.entity,
                              record_id, f"reminder:{rule.name}:{record_id}:{event}"))
    return notify_many(session, notices)


def event_of(rule: ReminderSpec, value: Any, now: dt.datetime) -> str:
    """The event a reminder is about, as text: the date (for yearly rules, the
    anniversary whose reminder time is the latest one not after `now`)."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if rule.yearly and isinstance(value, dt.date):
        final = local_date(now - dt.timedelta(seconds=rule.offset))
        for year in (final.year, final.year - 1):
            day = 28 if (value.month, value.day) == (2, 29) and not _leap(year) else value.day
            anniversary = dt.date(year, value.month, day)
            if anniversary <= final:
                return anniversary.isoformat()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _field_label(entity: Any, name: str) -> dict[str, str]:
    from app.schema.conditions import field_of

    f = field_of(entity, name)
    return {"en": f.label.en, "zh": f.label.zh} if f is not None else {"en": name, "zh": name}


# -- who runs passes -----------------------------------------------------------------


def slot_after(after: dt.datetime | None = None) -> dt.datetime:
    """The next slot (a multiple of the interval, UTC, aware) after `after`."""
    step = interval()
    after = after or dt.datetime.now(dt.UTC)
    stamp = (int(after.timestamp()) // step + 1) * step
    return dt.datetime.fromtimestamp(stamp, dt.UTC)


def slot_job_id(slot: dt.datetime) -> str:
    """One RQ job id per slot and console (its queue prefix): a slot runs once."""
    from app.jobs import _queue_name

    name = f"{_queue_name('schemadesk-reminders')}-{slot.strftime('%Y%m%dT%H%M%S')}"
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)  # RQ's job id alphabet


def ensure_scheduled(after: dt.datetime | None = None) -> str | None:
    """Put the next slot's tick on RQ's scheduled registry unless it is there."""
    from app.state import state

    if not state().spec.reminders or not current_app.config.get("REDIS_URL"):
        return None
    from rq import Queue
    from rq.job import Job

    from app.jobs import _queue_name, redis_connection

    slot = slot_after(after)
    job_id = slot_job_id(slot)
    connection = redis_connection()
    if Job.exists(job_id, connection=connection):
        return job_id
    Queue(_queue_name(QUEUE), connection=connection).enqueue_at(
        slot, "app.notify.reminders.tick", slot.isoformat(), job_id=job_id,
        result_ttl=3600, failure_ttl=7 * 86400)
    return job_id


def tick(slot: str) -> dict[str, Any]:
    """RQ entry point at a slot: schedule the next slot, then run a pass."""
    from app.jobs.runner import worker_app
    from app.state import state

    app = worker_app()
    with app.app_context():
        state().db.engine.dispose(close=False)  # a forked work horse: fresh connections
        next_id = ensure_scheduled(dt.datetime.fromisoformat(slot))
        counts = run_pass()
    return {"next": next_id, "counts": counts}


def start_inline_scheduler(app: Flask) -> threading.Thread | None:
    """Without Redis: a daemon thread that runs a pass every interval (run.py starts it)."""
    if app.config.get("REDIS_URL"):
        return None
    with app.app_context():
        from app.state import state

        if not state().spec.reminders:
            return None
        step = interval()

    def loop() -> None:
        while True:
            time.sleep(step - time.time() % step)
            try:
                with app.app_context():
                    run_pass()
            except Exception:  # noqa: BLE001 - the next pass retries; never kill the thread
                log.exception("reminder pass failed")

    thread = threading.Thread(target=loop, daemon=True, name="schemadesk-reminders")
    thread.start()
    return thread


def init_app(app: Flask, appbuilder: Any) -> None:
    """Init hook: with Redis, make sure the next reminder slot is scheduled."""
    if not app.config.get("REDIS_URL"):
        return
    try:
        ensure_scheduled()
    except Exception as exc:  # noqa: BLE001 - Redis down must not stop the console
        log.warning("reminders not scheduled: %s", exc)
