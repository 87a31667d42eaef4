# ruff: noqa: E501
"""E-mail through a real SMTP server (aiosmtpd) in each recipient's language, after commit."""

from __future__ import annotations

import email
import socket
import time
from email import policy
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.notify import notify
from app.notify.reminders import DEFAULT_MESSAGE
from app.state import state
from tests.conftest import CRM
from tests.notify.conftest import add_record, make_person, unique


class Inbox:
    """aiosmtpd handler: keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str, timeout: float = 20) -> email.message.EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages:
                if message["To"] == address:
                    return message
            time.sleep(0.1)
        raise AssertionError(f"no mail to {address}; got {[m['To'] for m in self.messages]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def smtp() -> Any:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def mail_app(request: pytest.FixtureRequest, app_factory: Any, smtp: Any) -> Flask:
    _inbox, port = smtp
    return app_factory(Path(CRM), request.param, SMTP_URL=f"smtp://127.0.0.1:{port}",
                       SMTP_FROM="crm@example.com", PUBLIC_URL="https://crm.example")


def test_mail_arrives_in_each_recipients_language(mail_app: Flask, smtp: Any) -> None:
    inbox, _port = smtp
    zh_user = make_person(mail_app, "operator", lang="zh")
    en_user = make_person(mail_app, "operator", lang="en")
    name = unique("Acme ")
    customer = add_record(mail_app, "customer", {"name": name, "owner": zh_user["employee_id"]})
    with mail_app.app_context():
        session = state().db.session
        notify(session, [zh_user["user_id"], en_user["user_id"]], DEFAULT_MESSAGE,
               {"field": {"en": "Birthday", "zh": "生日"}, "date": "2026-12-01"},
               entity="customer", record_id=customer)
        assert inbox.messages == [] or all(m["To"] not in (zh_user["email"], en_user["email"])
                                           for m in inbox.messages)  # nothing before commit
        session.commit()
    zh_mail = inbox.to(zh_user["email"])
    en_mail = inbox.to(en_user["email"])
    assert zh_mail["From"] == "crm@example.com"
    assert zh_mail["Subject"].startswith("【") and f"提醒：{name}（生日：2026-12-01）" in zh_mail["Subject"]
    # the English reader does not reach the customer: neither its name nor a link
    assert en_mail["Subject"].startswith("[") and f"Reminder: #{customer} (Birthday: 2026-12-01)" in en_mail["Subject"]
    # the owner reads the customer: the mail links to it
    assert f"https://crm.example/customer/show/{customer}" in zh_mail.get_content()
    assert "打开" in zh_mail.get_content()
    assert name not in en_mail.get_content() and "/customer/show/" not in en_mail.get_content()
    with mail_app.app_context():
        import sqlalchemy as sa

        table = state().models.system["notification"]
        emailed = state().db.session.execute(
            sa.select(table.c.emailed_at).where(table.c.record_id == customer)
            .where(table.c.entity == "customer")).scalars().all()
        assert len(emailed) == 2 and all(emailed)


def test_rolled_back_notification_sends_no_mail(mail_app: Flask, smtp: Any) -> None:
    inbox, _port = smtp
    person = make_person(mail_app, "operator", lang="en")
    with mail_app.app_context():
        session = state().db.session
        notify(session, [person["user_id"]], DEFAULT_MESSAGE, {"field": "x", "date": "y"})
        session.rollback()
        # a later, committed notification is mailed: the rolled-back one never is
        notify(session, [person["user_id"]], DEFAULT_MESSAGE, {"field": "later", "date": "z"})
        session.commit()
    mail = inbox.to(person["email"])
    assert "later" in mail["Subject"]
    time.sleep(1)
    assert [m["To"] for m in inbox.messages].count(person["email"]) == 1


def test_smtp_url_with_login_signs_in_to_the_server() -> None:
    """`smtp://user:password@host:port`: the console logs in (AUTH) before sending."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from app.notify.mail import smtp_connection

    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        logins.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"mailer" and auth_data.password == b"p@ss word"
        return AuthResult(success=ok)

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(),
                            authenticator=authenticator, auth_required=True,
                            auth_require_tls=False)
    controller.start()
    try:
        server = smtp_connection(f"smtp://mailer:p%40ss%20word@127.0.0.1:{controller.port}")
        server.sendmail("crm@example.com", ["boss@example.com"],
                        b"To: boss@example.com\r\nSubject: hi\r\n\r\nbody")
        server.quit()
        assert logins == [(b"mailer", b"p@ss word")]
        assert inbox.to("boss@example.com", timeout=5)["Subject"] == "hi"
    finally:
        controller.stop()
