"""Notifications (通知): in-app rows, e-mailed after commit, in the recipient's language.

`notify(session, recipients, message, params, entity=..., record_id=...,
dedupe_key=...)` is the one way any feature (approvals, reminders, rules)
tells users something. The rows are written in the caller's session, so a
write that rolls back notifies nobody; e-mails are handed to a job only after
the outermost transaction commits. `message` is an untranslated msgid (mark it
with `N_`): it is translated when it is shown or mailed, in the reader's
language, so a Chinese manager and an English operator read the same event in
their own words. A `dedupe_key` makes the call happen at most once ever (a
reminder under two racing schedulers), through the `notification_key` table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.models import utcnow

PENDING_MAIL = "schemadesk_notify_mail"
_LISTENING = False


def _tables() -> dict[str, sa.Table]:
    from app.state import state

    return state().models.system


def claim_key(session: Session, key: str) -> bool:
    """Insert `key` into notification_key unless present; True when this call took it.

    "Insert, ignore a conflict" is one statement on every engine; under
    PostgreSQL a racing second inserter waits for the first transaction and
    then inserts nothing, so exactly one of two schedulers goes on.
    """
    return _insert_ignore(session, _tables()["notification_key"],
                          {"key": key[:255], "created_at": utcnow()})


def _insert_ignore(session: Session, table: sa.Table, values: dict[str, Any]) -> bool:
    """INSERT a row unless its primary key exists; True when it was inserted."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        # psycopg reports no rowcount here: ask for the inserted key instead
        stmt: Any = pg_insert(table).values(**values).on_conflict_do_nothing()
        key = list(table.primary_key.columns)[0]
        return session.execute(stmt.returning(key)).first() is not None
    if dialect in ("mysql", "mariadb"):
        stmt = sa.insert(table).values(**values).prefix_with("IGNORE")
    else:
        stmt = sa.insert(table).values(**values).prefix_with("OR IGNORE")
    return bool(session.execute(stmt).rowcount)


def notify(
    session: Session,
    recipients: Iterable[int],
    message: str,
    params: dict[str, Any] | None = None,
    *,
    entity: str | None = None,
    record_id: int | None = None,
    dedupe_key: str | None = None,
) -> int:
    """Write one notification per distinct recipient; return how many were written.

    Returns 0 (and writes nothing) when `dedupe_key` was used before. Params
    should be plain values; to show a record's title, pass `entity` and
    `record_id` and write `%(record)s` (resolved for each reader, `#id` when
    they may not read it). A param given as `{"en": ..., "zh": ...}` (a label)
    is shown in the reader's language; `params["_text"] = {"en", "zh"}` replaces
    the msgid by a schema label (a reminder's `label`).
    """
    users = sorted({int(u) for u in recipients if u is not None})
    if dedupe_key is not None and not claim_key(session, dedupe_key):
        return 0
    if not users:
        return 0
    table = _tables()["notification"]
    now = utcnow()
    encoded = json.dumps(params or {}, default=str, ensure_ascii=False)
    rows = [
        {"user_id": user_id, "message": message, "params": encoded, "entity": entity,
         "record_id": record_id, "dedupe_key": dedupe_key, "created_at": now}
        for user_id in users
    ]
    session.execute(sa.insert(table), rows)
    _queue_mail(session, dedupe_key, now, users)
    return len(users)


@dataclass(frozen=True)
class Notice:
    """One `notify()` call, for `notify_many`."""

    recipients: tuple[int, ...]
    message: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    entity: str | None = None
    record_id: int | None = None
    dedupe_key: str | None = None


def notify_many(session: Session, notices: list[Notice]) -> int:
    """Like `notify()` for each notice, in a few statements; return the rows written.

    A scheduler pass that finds hundreds of due records claims their keys with
    one INSERT … ON CONFLICT DO NOTHING RETURNING on PostgreSQL (one per key on
    the other engines) and writes every notification with one multi-row INSERT.
    """
    keys = [n.dedupe_key for n in notices if n.dedupe_key is not None]
    claimed = claim_keys(session, keys)
    now = utcnow()
    rows = []
    users: set[int] = set()
    for n in notices:
        if n.dedupe_key is not None and n.dedupe_key not in claimed:
            continue
        encoded = json.dumps(n.params or {}, default=str, ensure_ascii=False)
        for user_id in sorted({int(u) for u in n.recipients if u is not None}):
            users.add(user_id)
            rows.append({"user_id": user_id, "message": n.message, "params": encoded,
                         "entity": n.entity, "record_id": n.record_id,
                         "dedupe_key": n.dedupe_key, "created_at": now})
    if rows:
        session.execute(sa.insert(_tables()["notification"]), rows)
        _queue_mail(session, None, now, sorted(users))
    return len(rows)


def claim_keys(session: Session, keys: list[str]) -> set[str]:
    """Claim many dedupe keys; return those this call took (see `claim_key`)."""
    if not keys:
        return set()
    if session.get_bind().dialect.name != "postgresql":
        return {k for k in dict.fromkeys(keys) if claim_key(session, k)}
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    table = _tables()["notification_key"]
    now = utcnow()
    claimed: set[str] = set()
    unique = list(dict.fromkeys(k[:255] for k in keys))
    for start in range(0, len(unique), 1000):
        chunk = unique[start:start + 1000]
        stmt = pg_insert(table).values([{"key": k, "created_at": now} for k in chunk])
        claimed.update(session.execute(
            stmt.on_conflict_do_nothing().returning(table.c.key)).scalars())
    return claimed


def _queue_mail(session: Session, dedupe_key: str | None, created_at: Any,
                users: list[int]) -> None:
    """Remember what to e-mail once the outermost transaction commits."""
    from app.notify.mail import mail_enabled

    if not mail_enabled():
        return
    _listen()
    session.info.setdefault(PENDING_MAIL, []).append(
        {"users": users, "created_at": created_at.isoformat(), "dedupe_key": dedupe_key}
    )


def _listen() -> None:
    """Install the commit/rollback listeners once per process (on every Session)."""
    global _LISTENING
    if _LISTENING:
        return
    _LISTENING = True
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_rollback", _after_rollback)


def _after_commit(session: Session) -> None:
    batches = session.info.pop(PENDING_MAIL, None)
    if batches:
        from app.notify.mail import enqueue_mail

        enqueue_mail(batches)


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING_MAIL, None)


__all__ = ["Notice", "claim_key", "claim_keys", "notify", "notify_many"]
