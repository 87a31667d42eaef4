"""Webhooks (系统集成): POST a signed JSON body to another system after a committed write.

Outbox pattern: when a transaction that creates, updates, deletes or moves
(transition) records of a hooked entity commits, a `webhook_delivery` row per
hook and record is written IN that transaction (so a rolled-back write sends
nothing, and a committed one is never lost), and after the commit a job is
handed each delivery: RQ with back-off retries (`Retry(max, interval)`), or a
thread without Redis. The body is

    {"event", "entity", "id", "record", "at", "delivery_id"}

where `record` is the record as the REST API presents it to an admin, with
sensitive fields masked unless the hook says `sensitive: true`. The raw body is
signed: `X-SchemaDesk-Signature: sha256=<hex HMAC-SHA256(secret, body)>`, with
`X-SchemaDesk-Timestamp`, `X-SchemaDesk-Event` and `X-SchemaDesk-Delivery`.
The secret is read from the environment variable the hook names
(`secret_env`); while it is unset, the hook is off.

Writes that bypass the ORM (file imports' multi-row inserts) report their ids
with `note_bulk(session, entity, event, ids)` and are delivered the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Session

from app.models import utcnow
from app.schema.automation import WebhookSpec

log = logging.getLogger(__name__)
PENDING = "schemadesk_webhook_events"
QUEUED = "schemadesk_webhook_deliveries"
RETRY_INTERVALS = (10, 60, 300, 900, 3600)  # seconds between attempts (RQ and inline)
TIMEOUT = 10


def active_hooks(entity: str | None = None) -> list[WebhookSpec]:
    """The hooks of `entity` (or all) whose secret is set in the environment."""
    from app.state import state

    return [h for h in state().spec.webhooks
            if (entity is None or h.entity == entity) and os.environ.get(h.secret_env)]


def sign(secret: str, body: bytes) -> str:
    """The signature header value of `body`: `sha256=<hex HMAC>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- collecting events in the writing session ----------------------------------------


class _Collector:
    """Session listeners of one app: note hooked writes, write deliveries, send after commit."""

    def __init__(self, app: Flask, classes: dict[type, str]):
        self.app = app
        self.classes = classes

    def after_flush(self, session: Session, _ctx: Any) -> None:
        if not self._hooked():
            return
        events = session.info.setdefault(PENDING, {})
        for obj in session.new:
            self._note(events, obj, "create")
        for obj in session.dirty:
            if session.is_modified(obj, include_collections=False):
                self._note(events, obj, self._update_kind(obj))
        for obj in session.deleted:
            entity = self.classes.get(type(obj))
            if entity and self._wants(entity, "delete"):
                # gone after the flush: present it now
                events[(entity, obj.id)] = ("delete", self._present_all(entity, obj))

    def _hooked(self) -> bool:
        from app.state import state

        return bool(state().spec.webhooks) and bool(active_hooks())

    def _wants(self, entity: str, event: str) -> bool:
        return any(event in h.events for h in active_hooks(entity))

    def _update_kind(self, obj: Any) -> str:
        entity = self.classes.get(type(obj))
        if entity is None:
            return "update"
        from app.state import state

        workflow = state().spec.entity(entity).workflow
        if workflow is not None:
            history = sa.inspect(obj).attrs[workflow.field].history
            if history.has_changes() and history.deleted:
                return "transition"
        return "update"

    def _note(self, events: dict, obj: Any, kind: str) -> None:
        entity = self.classes.get(type(obj))
        if entity is None or not self._wants(entity, kind):
            return
        key = (entity, obj.id)
        if key in events and events[key][0] in ("create", "transition"):
            return  # a create (or a step) that was also edited reports as such
        events[key] = (kind, obj)

    def before_commit(self, session: Session) -> None:
        if session.in_nested_transaction() or not session.info.get(PENDING):
            return
        if session.new or session.dirty or session.deleted:
            session.flush()
        events = session.info.pop(PENDING, {})
        table = _table()
        at = utcnow().replace(tzinfo=dt.UTC).isoformat(timespec="seconds")
        queued = session.info.setdefault(QUEUED, [])
        for (entity, record_id), (kind, obj) in events.items():
            if obj is None:  # noted by a bulk write: load it now
                obj = session.get(self._model(entity), record_id)
                if obj is None:
                    continue
            for hook in active_hooks(entity):
                if kind not in hook.events:
                    continue
                shown = obj if isinstance(obj, dict) else self._present_all(entity, obj)
                delivery_id = uuid.uuid4().hex
                body = _body(kind, entity, record_id, shown[hook.sensitive], at,
                             delivery_id)
                session.execute(sa.insert(table).values(
                    delivery_id=delivery_id, hook=hook.name, event=kind, entity=entity,
                    record_id=record_id, url=hook.url, body=body.decode(),
                    body_hash=hashlib.sha256(body).hexdigest(), status="pending",
                    attempts=0, created_at=utcnow()))
                queued.append(delivery_id)

    def _model(self, entity: str) -> type:
        return next(cls for cls, name in self.classes.items() if name == entity)

    def note_bulk(self, session: Session, entity: str, kind: str, ids: Any) -> None:
        """Note records written without ORM objects (imports' multi-row statements)."""
        if not self._hooked() or not self._wants(entity, kind):
            return
        events = session.info.setdefault(PENDING, {})
        for record_id in ids:
            if (entity, record_id) not in events:
                events[(entity, record_id)] = (kind, None)

    def _present_all(self, entity: str, obj: Any) -> dict[bool, dict[str, Any]]:
        """The record as the API shows it to an admin: masked, and with sensitive values clear.

        Each hook takes one of the two (`sensitive: true` or not); the record service
        decides what masking means.
        """
        from app.records.service import RecordService

        service = RecordService(entity, None)
        return {reveal: service.present(obj, reveal=reveal) for reveal in (False, True)}

    def after_commit(self, session: Session) -> None:
        deliveries = session.info.pop(QUEUED, None)
        if deliveries:
            for delivery_id in deliveries:
                try:
                    enqueue_delivery(delivery_id)
                except Exception as exc:  # noqa: BLE001 - the row stays pending; re-send
                    log.warning("webhook delivery %s not queued: %s", delivery_id, exc)

    def after_rollback(self, session: Session) -> None:
        session.info.pop(PENDING, None)
        session.info.pop(QUEUED, None)


def _body(kind: str, entity: str, record_id: Any, record: dict[str, Any], at: str,
          delivery_id: str) -> bytes:
    return json.dumps({"event": kind, "entity": entity, "id": record_id, "record": record,
                       "at": at, "delivery_id": delivery_id},
                      ensure_ascii=False, default=str, sort_keys=True).encode()


def _table() -> sa.Table:
    from app.state import state

    return state().models.system["webhook_delivery"]


# -- sending -----------------------------------------------------------------------------


def retry_intervals() -> list[int]:
    """Seconds between attempts (WEBHOOK_RETRY_INTERVALS, comma-separated, for tests)."""
    value = current_app.config.get("WEBHOOK_RETRY_INTERVALS") or os.environ.get(
        "WEBHOOK_RETRY_INTERVALS")
    if value:
        items = value if isinstance(value, list | tuple) else str(value).split(",")
        return [int(float(v)) for v in items]
    return list(RETRY_INTERVALS)


def _hook(name: str) -> WebhookSpec | None:
    from app.state import state

    return next((h for h in state().spec.webhooks if h.name == name), None)


def enqueue_delivery(delivery_id: str) -> None:
    """Hand a delivery to RQ (with back-off retries) or to a thread of this process."""
    table = _table()
    from app.state import state

    with state().db.engine.connect() as conn:
        hook_name = conn.execute(sa.select(table.c.hook).where(
            table.c.delivery_id == delivery_id)).scalar()
    hook = _hook(hook_name or "")
    retries = hook.retries if hook is not None else 0
    if current_app.config.get("REDIS_URL"):
        from rq import Queue, Retry

        from app.jobs import _queue_name, redis_connection

        intervals = retry_intervals()[:max(retries, 1)]
        Queue(_queue_name("default"), connection=redis_connection()).enqueue(
            "app.notify.webhooks.deliver_job", delivery_id,
            retry=Retry(max=retries, interval=intervals) if retries else None,
            job_timeout=TIMEOUT * 3, result_ttl=86400, failure_ttl=7 * 86400)
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    threading.Thread(target=_deliver_inline, args=(app, delivery_id, retries), daemon=True,
                     name=f"schemadesk-webhook-{delivery_id[:8]}").start()


def _deliver_inline(app: Flask, delivery_id: str, retries: int) -> None:
    with app.app_context():
        intervals = retry_intervals()
        for attempt in range(retries + 1):
            final = attempt == retries
            try:
                deliver(delivery_id, final=final)
                return
            except DeliveryFailed:
                if final:
                    return
                time.sleep(intervals[min(attempt, len(intervals) - 1)])


def deliver_job(delivery_id: str) -> dict[str, Any]:
    """RQ entry point: one attempt; raising lets RQ retry after its interval."""
    from rq import get_current_job

    from app.jobs.runner import worker_app
    from app.state import state

    app = worker_app()
    with app.app_context():
        state().db.engine.dispose(close=False)
        job = get_current_job()
        final = job is None or not job.retries_left
        status = deliver(delivery_id, final=final)
    return {"delivery_id": delivery_id, "status": status}


class DeliveryFailed(Exception):
    """An attempt did not get a 2xx answer (retried while attempts are left)."""


def deliver(delivery_id: str, final: bool = True) -> int:
    """POST a delivery once; record the attempt; return the status code or raise DeliveryFailed."""
    from app.state import state

    table = _table()
    engine = state().db.engine
    with engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.delivery_id == delivery_id)
                           ).mappings().first()
    if row is None or row["status"] == "ok":
        return 0
    hook = _hook(row["hook"])
    secret = os.environ.get(hook.secret_env) if hook is not None else None
    code: int | None = None
    error: str | None = None
    if not secret:
        error = f"{hook.secret_env if hook else row['hook']} is not set"
    else:
        code, error = _post(row["url"], row["body"].encode(), secret, row["event"], delivery_id)
    ok = code is not None and 200 <= code < 300
    status = "ok" if ok else ("failed" if final else "retrying")
    with engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == row["id"]).values(
            status=status, status_code=code, attempts=table.c.attempts + 1,
            last_error=None if ok else (error or "")[:1000], last_attempt_at=utcnow()))
    if not ok:
        raise DeliveryFailed(error or f"HTTP {code}")
    return int(code or 0)


def _post(url: str, body: bytes, secret: str, kind: str, delivery_id: str
          ) -> tuple[int | None, str | None]:
    """POST `body`; return (status code or None, a one-line error or None)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "SchemaDesk-Webhook/1",
        "X-SchemaDesk-Signature": sign(secret, body),
        "X-SchemaDesk-Timestamp": str(int(time.time())),
        "X-SchemaDesk-Event": kind,
        "X-SchemaDesk-Delivery": delivery_id,
    })
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - http(s) only, checked by the schema
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(exc).__name__}: {reason}"[:300]


def resend(delivery_id: str) -> None:
    """Send a delivery again (same body, same delivery id): from the delivery log."""
    from app.state import state

    table = _table()
    with state().db.engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.delivery_id == delivery_id)
                     .values(status="pending"))
    enqueue_delivery(delivery_id)


def note_bulk(session: Session, entity: str, kind: str, ids: Any) -> None:
    """Deliver `kind` (create/update/delete) for records a bulk statement wrote.

    Call it in the writing transaction, before commit; without webhooks it does nothing.
    """
    collector = current_app.extensions.get("sd_webhooks")
    if collector is not None:
        collector.note_bulk(session, entity, kind, ids)


def init_app(app: Flask, appbuilder: Any) -> None:
    """Init hook: listen to the app's session when the schema declares webhooks."""
    from app.notify.webhook_views import register
    from app.state import listen, state

    register(appbuilder)
    st = state()
    if not st.spec.webhooks:
        return
    classes = {st.models.model(e.name): e.name for e in st.spec.entities}
    collector = _Collector(app, classes)
    app.extensions["sd_webhooks"] = collector
    factory = st.db.session.session_factory
    listen(factory, "after_flush", collector.after_flush)
    listen(factory, "before_commit", collector.before_commit)
    listen(factory, "after_commit", collector.after_commit)
    listen(factory, "after_rollback", collector.after_rollback)
