"""E-mail (邮件通知) of notifications through SMTP, when `SMTP_URL` is set.

`SMTP_URL` is `smtp://user:pass@host:port` (plain, `?starttls=1` to upgrade)
or `smtps://…` (TLS from the start); `SMTP_FROM` is the sender. Mail is sent
by the `notify_mail` job (RQ with retries, or a thread without Redis), after
the notifying transaction committed. Each row is claimed (`emailed_at`) before
it is sent, so a retried or duplicated job never mails a row twice.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import sqlalchemy as sa
from flask import current_app, has_app_context

from app.models import utcnow

MAIL_JOB = "notify_mail"


def setting(name: str) -> str | None:
    """A setting from the app config, else the environment (tests set either)."""
    value = current_app.config.get(name) if has_app_context() else None
    return value or os.environ.get(name) or None


def mail_enabled() -> bool:
    """True when notifications are also e-mailed (SMTP_URL is set)."""
    return bool(setting("SMTP_URL"))


def enqueue_mail(batches: list[dict[str, Any]]) -> int | None:
    """Start one mail job for the notifications of a committed transaction."""
    from app.jobs import enqueue

    users = sorted({u for batch in batches for u in batch["users"]})
    since = min(batch["created_at"] for batch in batches)
    return enqueue(MAIL_JOB, {"users": users, "since": since})


def smtp_connection(url: str, timeout: float = 30) -> smtplib.SMTP:
    """Open and log in to the SMTP server of `url`."""
    parts = urlsplit(url)
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = parts.hostname or "localhost"
    if parts.scheme == "smtps":
        server: smtplib.SMTP = smtplib.SMTP_SSL(host, parts.port or 465, timeout=timeout,
                                               context=ssl.create_default_context())
    else:
        server = smtplib.SMTP(host, parts.port or 25, timeout=timeout)
        if options.get("starttls") in ("1", "true", "yes"):
            server.starttls(context=ssl.create_default_context())
    if parts.username:
        server.login(unquote(parts.username), unquote(parts.password or ""))
    return server


def send_mail_job(ctx: Any, users: list[int], since: str, **_: Any) -> dict[str, Any]:
    """Job: e-mail the not yet mailed notifications of `users` written since `since`."""
    import datetime as dt

    from app.notify.center import render_notification, user_language
    from app.state import state

    st = state()
    table = st.models.system["notification"]
    engine = st.db.engine
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(table).where(table.c.user_id.in_(users))
            .where(table.c.emailed_at.is_(None))
            .where(table.c.created_at >= dt.datetime.fromisoformat(since))
            .order_by(table.c.id)
        ).mappings().all()
        emails = _emails(conn, users)
    url = setting("SMTP_URL")
    if not url or not rows:
        return {"counts": {"sent": 0}}
    sent = 0
    server = smtp_connection(url)
    try:
        for row in rows:
            address = emails.get(row["user_id"])
            if not address or not _claim(engine, table, row["id"]):
                continue
            lang = user_language(row["user_id"])
            subject, body = render_notification(row, lang, for_mail=True)
            try:
                server.send_message(_message(address, subject, body))
            except Exception:
                _unclaim(engine, table, row["id"])  # the retry sends it
                raise
            sent += 1
    finally:
        try:
            server.quit()
        except Exception:  # noqa: BLE001 - the mails went out or the error is raised
            pass
    return {"counts": {"sent": sent}}


def _emails(conn: Any, users: list[int]) -> dict[int, str]:
    """The e-mail addresses (ab_user.email) of `users`."""
    ab_user = sa.table("ab_user", sa.column("id"), sa.column("email"))
    rows = conn.execute(sa.select(ab_user.c.id, ab_user.c.email)
                        .where(ab_user.c.id.in_(users))).all()
    return {int(i): e for i, e in rows if e}


def _claim(engine: sa.Engine, table: sa.Table, row_id: int) -> bool:
    with engine.begin() as conn:
        return bool(conn.execute(
            sa.update(table).where(table.c.id == row_id).where(table.c.emailed_at.is_(None))
            .values(emailed_at=utcnow())).rowcount)


def _unclaim(engine: sa.Engine, table: sa.Table, row_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == row_id).values(emailed_at=None))


def _message(address: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = setting("SMTP_FROM") or "schemadesk@localhost"
    message["To"] = address
    message["Subject"] = subject
    message.set_content(body)
    return message


def register() -> None:
    """Register the mail job kind (three attempts: a busy SMTP server is retried)."""
    from app.jobs import register_kind

    register_kind(MAIL_JOB, send_mail_job, queue="default", timeout=300, retries=3)
