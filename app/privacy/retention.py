"""Retention rules (保存期限): preview, scheduled runs that happen once per slot, reports.

`retention: {after: 3y, from: updated_at, when: {...}, action: anonymise}` on an
entity: records whose `from` date is older than `after` and that match `when`
are erased (`app.privacy.erase`) with the rule's action. A run belongs to a
slot of RETENTION_SCHEDULE (cron, UTC): its `retention_run` row is unique per
rule and slot, so when two scheduler processes tick at once only the one that
inserts the row runs, the other finds it taken. Each run writes a destruction
report (`retention_item`: entity, id, action, the title now shown, the hash of
the record's `erase` audit entry) and one `retention` audit entry with counts.

Scheduling reuses the backup schedule's way: with REDIS_URL the slot's tick is
put on RQ's scheduled registry under a job id made of the slot; without Redis
a daemon thread of the web process waits for the slot. Nothing is scheduled
unless RETENTION_SCHEDULE is set.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from app.audit import record_event
from app.schema.spec import EntitySpec
from app.state import state

QUEUE = "backup"
BATCH = 200


def schedule_of(app: Any = None) -> str | None:
    """RETENTION_SCHEDULE (cron, UTC) from the config or the environment, or None."""
    app = app or current_app
    return app.config.get("RETENTION_SCHEDULE") or os.environ.get("RETENTION_SCHEDULE") or None


def rules() -> list[EntitySpec]:
    """The entities that have a retention rule."""
    return [e for e in state().spec.entities if e.retention is not None]


def cutoff(entity: EntitySpec, today: dt.date) -> dt.datetime:
    """The moment before which a record's `from` date is past its retention."""
    rule = entity.retention
    assert rule is not None
    year, month = divmod(today.year * 12 + today.month - 1 - rule.months, 12)
    day = min(today.day, 28 if month + 1 == 2 else 30 if month + 1 in (4, 6, 9, 11) else 31)
    return dt.datetime(year, month + 1, day) - dt.timedelta(days=rule.days)


def due_clause(entity: EntitySpec, today: dt.date) -> Any:
    """The criterion of the records a run on `today` changes (before leaving out erased ones)."""
    from app.records.scope import ScopeCompiler

    rule = entity.retention
    assert rule is not None
    st = state()
    table = st.models.table(entity.name)
    column = table.c[rule.date_field]
    limit: Any = cutoff(entity, today)
    if isinstance(column.type, sa.Date):
        limit = limit.date()
    clauses = [column < limit]
    if rule.when is not None:
        clauses.append(ScopeCompiler(st.spec, 0).compile(entity, rule.when))
    return sa.and_(*clauses)


def due_ids(entity: EntitySpec, today: dt.date) -> list[int]:
    """The ids a run on `today` changes: past retention, matching `when`, not yet erased."""
    st = state()
    table, tomb = st.models.table(entity.name), st.models.system["subject_erasure"]
    with st.db.engine.connect() as conn:
        # Tombstones hold ids as text; compared here, not in SQL (MariaDB collations differ).
        erased = set(conn.execute(sa.select(tomb.c.record_id).where(
            tomb.c.entity == entity.name)).scalars())
        ids = conn.execute(sa.select(table.c.id).where(due_clause(entity, today))
                           .order_by(table.c.id)).scalars()
        return [i for i in ids if str(i) not in erased]


def next_run(app: Any = None, after: dt.datetime | None = None) -> dt.datetime | None:
    """When the next scheduled run is (UTC), or None when nothing is scheduled."""
    from croniter import croniter

    schedule = schedule_of(app)
    if not schedule or not croniter.is_valid(schedule):
        return None
    return croniter(schedule, after or dt.datetime.now(dt.UTC)).get_next(dt.datetime)


def preview(on: dt.date | None = None) -> list[dict[str, Any]]:
    """Per rule: how many records the run on `on` (default: the next run) would change."""
    when = next_run()
    day = on or (when.date() if when else dt.date.today())
    out = []
    for entity in rules():
        rule = entity.retention
        assert rule is not None
        out.append({"entity": entity.name, "label": entity.label, "action": rule.action,
                    "after": rule.after, "from": rule.date_field,
                    "count": len(due_ids(entity, day)),
                    "on": day, "cutoff": cutoff(entity, day), "scheduled": when is not None,
                    "has_when": rule.when is not None, "confirmed": confirmed(entity)})
    return out


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def claim(entity: EntitySpec, slot: str) -> int | None:
    """Insert the run of `entity`'s rule for `slot`; None when another process has it."""
    runs = state().models.system["retention_run"]
    rule = entity.retention
    assert rule is not None
    try:
        with state().db.engine.begin() as conn:
            return int(conn.execute(sa.insert(runs).values(
                entity=entity.name, slot=slot, action=rule.action, status="running",
                rule=json.dumps({"after": rule.after, "from": rule.date_field,
                                 "action": rule.action}), changed=0,
                started_at=_utcnow())).inserted_primary_key[0])
    except sa.exc.IntegrityError:
        return None


def run_rule(entity: EntitySpec, slot: str, today: dt.date | None = None) -> dict[str, Any]:
    """Run `entity`'s rule for `slot` unless it already ran; return what was done."""
    from app.privacy.erase import erase_record
    from app.records.service import RecordError, RecordService

    run_id = claim(entity, slot)
    if run_id is None:
        return {"entity": entity.name, "slot": slot, "skipped": True, "changed": 0}
    st = state()
    rule = entity.retention
    assert rule is not None
    items = st.models.system["retention_item"]
    runs = st.models.system["retention_run"]
    changed, failed = 0, 0
    service = RecordService(entity.name, None)
    for record_id in due_ids(entity, today or dt.date.today()):
        try:
            obj = service.get(record_id, "delete" if rule.action == "delete" else "update")
            done = erase_record(service, obj, rule=f"retention:{entity.name}", mode=rule.action)
        except RecordError:
            st.db.session.rollback()
            failed += 1
            continue
        with st.db.engine.begin() as conn:
            conn.execute(sa.insert(items), [
                {"run_id": run_id, "entity": e["entity"], "record_id": str(e["id"]),
                 "action": e["mode"],
                 "new_title": done["title"] if e["mode"] == "anonymise" and e["entity"]
                 == entity.name else None,
                 "audit_hash": done["audit_hash"] if e["entity"] == entity.name else None}
                for e in done["erased"]])
        changed += 1
    detail = {"rule": json.loads(_rule_text(entity)), "slot": slot, "changed": changed,
              "failed": failed, "run": run_id}
    record_event("retention", entity=entity.name, record_id=None, title=None, detail=detail)
    log = st.models.system["audit_log"]
    with st.db.engine.begin() as conn:
        entry_hash = conn.execute(sa.select(log.c.hash).where(
            log.c.action == "retention", log.c.entity == entity.name)
            .order_by(log.c.id.desc()).limit(1)).scalar()
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values(
            status="done" if not failed else "partial", changed=changed,
            finished_at=_utcnow(), audit_hash=entry_hash,
            error=None if not failed else f"{failed} record(s) could not be erased"))
    return {"entity": entity.name, "slot": slot, "run": run_id, "changed": changed,
            "failed": failed, "skipped": False}


def _rule_text(entity: EntitySpec) -> str:
    rule = entity.retention
    assert rule is not None
    return json.dumps({"after": rule.after, "from": rule.date_field, "action": rule.action})


def fingerprint(entity: EntitySpec) -> str:
    """A short hash of the rule as written: a changed rule needs a new confirmation."""
    import hashlib

    rule = entity.retention
    text = _rule_text(entity) + repr(rule.when if rule else None)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def confirmed(entity: EntitySpec) -> bool:
    """Whether an admin confirmed this rule (as it is now) after seeing its preview."""
    runs_t = state().models.system["retention_run"]
    with state().db.engine.connect() as conn:
        return conn.execute(sa.select(runs_t.c.id).where(
            runs_t.c.entity == entity.name,
            runs_t.c.slot == f"confirm:{fingerprint(entity)}")).first() is not None


def confirm(entity: EntitySpec, who: str) -> None:
    """Record that `who` saw the preview and lets the schedule run this rule."""
    runs_t = state().models.system["retention_run"]
    try:
        with state().db.engine.begin() as conn:
            conn.execute(sa.insert(runs_t).values(
                entity=entity.name, slot=f"confirm:{fingerprint(entity)}",
                action=entity.retention.action if entity.retention else "", status="confirmed",
                rule=_rule_text(entity), changed=0, started_at=_utcnow(), error=who))
    except sa.exc.IntegrityError:
        return  # confirmed already
    record_event("retention_confirm", entity=entity.name, detail={
        "rule": json.loads(_rule_text(entity)), "by": who})


def run_all(slot: str, today: dt.date | None = None, scheduled: bool = False
            ) -> list[dict[str, Any]]:
    """Run every rule for `slot` (each once, whatever the number of processes).

    A scheduled run skips a rule no admin has confirmed since it last changed:
    a rule is previewed before it first runs (`schemadesk retention run` by hand
    is explicit and runs it).
    """
    results = []
    for entity in rules():
        if scheduled and not confirmed(entity):
            results.append({"entity": entity.name, "slot": slot, "skipped": True,
                            "unconfirmed": True, "changed": 0})
            continue
        results.append(run_rule(entity, slot, today))
    return results


def slot_name(slot: dt.datetime) -> str:
    return slot.strftime("%Y-%m-%dT%H:%M")


# -- reports --------------------------------------------------------------------


def runs(limit: int = 100) -> list[dict[str, Any]]:
    table = state().models.system["retention_run"]
    with state().db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(table).where(table.c.status != "confirmed")
            .order_by(table.c.id.desc()).limit(limit)).mappings()]


def report(run_id: int) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A run and its destruction report items."""
    st = state()
    runs_t, items = st.models.system["retention_run"], st.models.system["retention_item"]
    with st.db.engine.connect() as conn:
        run = conn.execute(sa.select(runs_t).where(runs_t.c.id == run_id)).mappings().first()
        rows = [dict(r) for r in conn.execute(
            sa.select(items).where(items.c.run_id == run_id).order_by(items.c.id)).mappings()]
    return (dict(run) if run else None), rows


REPORT_HEADER = ["run", "rule", "slot", "started_at", "finished_at", "entity", "record_id",
                 "action", "new_title", "erase_entry_hash", "run_entry_hash"]


def report_rows(run_id: int) -> list[list[Any]]:
    """The CSV rows of a run's destruction report (header first)."""
    run, items = report(run_id)
    if run is None:
        return [REPORT_HEADER]
    return [REPORT_HEADER] + [
        [run["id"], run["rule"], run["slot"], run["started_at"], run["finished_at"],
         i["entity"], i["record_id"], i["action"], i["new_title"] or "", i["audit_hash"] or "",
         run["audit_hash"] or ""] for i in items]


# -- scheduling -------------------------------------------------------------------


def register_jobs() -> None:
    """The `retention` job kind (a run started from the admin page)."""
    from app.jobs import register_kind

    register_kind("retention", retention_job, queue="backup", timeout=6 * 3600)


def retention_job(ctx: Any, slot: str, **_: Any) -> dict[str, Any]:
    results = run_all(slot)
    changed = sum(r["changed"] for r in results)
    return {"counts": {"changed": changed}, "message": json.dumps(results, default=str)}


def slot_job_id(slot: dt.datetime) -> str:
    from app.jobs import _queue_name

    return f"{_queue_name('schemadesk-retention')}-{slot.strftime('%Y%m%dT%H%M')}"


def ensure_scheduled(after: dt.datetime | None = None) -> str | None:
    """Put the next slot's tick on RQ unless it already is; return its job id."""
    slot = next_run(after=after)
    if slot is None or not current_app.config.get("REDIS_URL"):
        return None
    from rq import Queue
    from rq.job import Job

    from app.jobs import _queue_name, redis_connection

    job_id = slot_job_id(slot)
    connection = redis_connection()
    if Job.exists(job_id, connection=connection):
        return job_id
    Queue(_queue_name(QUEUE), connection=connection).enqueue_at(
        slot, "app.privacy.retention.tick", slot.isoformat(), job_id=job_id,
        result_ttl=7 * 86400, failure_ttl=7 * 86400)
    return job_id


def tick(slot: str) -> dict[str, Any]:
    """RQ entry point at a slot: run the rules, schedule the next slot."""
    from app.jobs.runner import worker_app

    app = worker_app()
    with app.app_context():
        at = dt.datetime.fromisoformat(slot)
        results = run_all(slot_name(at), at.date(), scheduled=True)
        next_id = ensure_scheduled(at)
    return {"results": results, "next": next_id}


def _thread(app: Flask) -> None:
    """Without Redis: wait for each slot in this process and run it (once, by the slot row)."""
    while True:
        with app.app_context():
            slot = next_run(app)
        if slot is None:
            return
        time.sleep(max(1.0, (slot - dt.datetime.now(dt.UTC)).total_seconds()))
        with app.app_context():
            try:
                run_all(slot_name(slot), slot.date(), scheduled=True)
            except Exception:  # noqa: BLE001 - logged; the next slot still comes
                current_app.logger.exception("retention run failed")


def start_schedule(app: Flask) -> None:
    """Schedule retention runs when RETENTION_SCHEDULE is set and there are rules."""
    if not schedule_of(app) or not rules():
        return
    if app.config.get("REDIS_URL"):
        try:
            ensure_scheduled()
        except Exception as exc:  # noqa: BLE001 - Redis down must not stop the console
            app.logger.warning("RETENTION_SCHEDULE not scheduled: %s", exc)
        return
    threading.Thread(target=_thread, args=(app,), daemon=True,
                     name="schemadesk-retention").start()
