"""Two-factor sign-in (两步验证), the login log (登录日志), on real databases.

The apps run a small schema written here (a `clerk` role with `mfa: required`,
an optional `viewer`, an `auditor`), on SQLite and PostgreSQL; MariaDB runs the
enrol-and-sign-in smoke test.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa

from app.state import state
from tests.security.conftest import PASSWORD, make_user

SCHEMA = """\
version: 1
app:
  title: {en: Desk, zh: 工作台}
  default_locale: zh
entities:
  ticket:
    label: {en: Ticket, zh: 工单}
    title: subject
    fields:
      subject: {type: string, required: true, label: {en: Subject, zh: 主题}}
      secret_note: {type: string, encrypted: true, label: {en: Note, zh: 备注}}
roles:
  clerk:
    label: {en: Clerk, zh: 办事员}
    mfa: required
    grants:
      ticket: [read, create, update]
  viewer:
    label: {en: Viewer, zh: 查看员}
    grants:
      ticket: [read]
  auditor:
    label: {en: Auditor, zh: 审计员}
    grants:
      "*": [read]
      audit_log: [read, export]
"""
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module")
def schema_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mfa_schema") / "desk.yaml"
    path.write_text(SCHEMA, encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def desk_app(request: pytest.FixtureRequest, app_factory: Any, schema_path: Path) -> Any:
    return app_factory(schema_path, request.param)


def sign_in(client: Any, username: str, password: str = PASSWORD, **headers: Any) -> Any:
    """Post the password form; return the response (not followed)."""
    client.get("/lang/en")  # the pages speak English to the assertions
    return client.post("/login/", data={"username": username, "password": password},
                       headers=headers)


def secret_from(page: str) -> str:
    match = re.search(r'id="mfa-secret"[^>]*>([A-Z2-7]+)<', page)
    assert match, "the enrolment page shows the key as text"
    return match.group(1)


def next_code(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def enrol(client: Any) -> tuple[str, list[str]]:
    """Enrol the signed-in user of `client`; return the secret and the recovery codes."""
    page = client.get("/account/mfa/enrol").data.decode()
    assert 'src="data:image/svg+xml' in page, "the QR code is made here, as an SVG data URI"
    secret = secret_from(page)
    shown = client.post("/account/mfa/confirm", data={"code": next_code(secret)})
    assert shown.status_code == 200
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", shown.data.decode())
    assert len(codes) == 10
    return secret, codes


def mfa_row(app: Any, user_id: int) -> Any:
    with app.app_context():
        table = state().models.system["user_mfa"]
        with state().db.engine.connect() as conn:
            return conn.execute(sa.select(table).where(table.c.user_id == user_id)).first()


def log_entries(app: Any, username: str) -> list[tuple[str, dict, str | None]]:
    """(action, detail, client_ip) of the audit entries on `username`, oldest first."""
    with app.app_context():
        table = state().models.system["audit_log"]
        with state().db.engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.entity == "ab_user",
                                                       table.c.record_title == username,
                                                       table.c.action.not_in(("create", "update")))
                                .order_by(table.c.id)).all()
    return [(r.action, json.loads(r.detail) if r.detail else {}, r.client_ip) for r in rows]


def test_enrol_then_sign_in_with_a_code(desk_app: Any) -> None:
    user_id, username = make_user(desk_app, "viewer")
    with desk_app.test_client() as client:
        assert sign_in(client, username).status_code == 302
        assert client.get("/ticket/list/").status_code == 200  # optional: no second step
        assert client.get("/account/mfa/enrol").status_code == 200
        wrong = client.post("/account/mfa/confirm", data={"code": "000000"})
        assert wrong.status_code == 302 and mfa_row(desk_app, user_id).enabled_at is None
        secret, codes = enrol(client)
        client.get("/logout/")

    row = mfa_row(desk_app, user_id)
    assert row.enabled_at is not None
    assert secret not in row.secret, "the secret is encrypted at rest"
    assert not any(c.replace("-", "") in (row.recovery or "") for c in codes)

    with desk_app.test_client() as client:
        first = sign_in(client, username)
        assert first.status_code == 302
        assert client.get("/ticket/list/").location.endswith("/account/mfa/verify")
        assert client.get("/api/v1/ticket/").status_code == 401
        # The code used to confirm the enrolment cannot be replayed.
        replay = client.post("/account/mfa/verify", data={"code": next_code(secret)})
        assert replay.status_code == 200 and b"wrong or was used" in replay.data
        done = client.post("/account/mfa/verify", data={"code": next_code(secret, 1)})
        assert done.status_code == 302
        assert client.get("/ticket/list/").status_code == 200
    actions = [a for a, _, _ in log_entries(desk_app, username)]
    assert actions[-2:] == ["login_failed", "login"]
    assert log_entries(desk_app, username)[-2][1]["reason"] == "wrong_code"
    assert log_entries(desk_app, username)[-1][1]["mfa"] == "totp"


def test_recovery_code_works_once(desk_app: Any) -> None:
    user_id, username = make_user(desk_app, "viewer")
    with desk_app.test_client() as client:
        sign_in(client, username)
        _secret, codes = enrol(client)
        client.get("/logout/")
    for attempt, expected in ((codes[3].upper(), 302), (codes[3], 200)):
        with desk_app.test_client() as client:
            sign_in(client, username)
            answer = client.post("/account/mfa/verify", data={"code": attempt})
            assert answer.status_code == expected, attempt
    with desk_app.app_context():
        from app.security.mfa import recovery_left

        assert recovery_left(user_id) == 9


def test_role_that_requires_mfa_is_sent_to_enrolment(desk_app: Any) -> None:
    _user_id, username = make_user(desk_app, "clerk")
    with desk_app.test_client() as client:
        assert sign_in(client, username).status_code == 302
        for path in ("/ticket/list/", "/account/security", "/security/login-log/", "/"):
            assert client.get(path).location.endswith("/account/mfa/enrol"), path
        assert client.post("/account/mfa/disable").status_code == 302  # held too
        assert client.get("/account/mfa/verify").status_code == 302
        assert not client.get("/lang/zh").location.endswith("/account/mfa/enrol")
        client.get("/lang/en")
        secret, _codes = enrol(client)
        assert client.get("/ticket/list/").status_code == 200
        page = client.get("/account/security").data.decode()
        assert "Turn off" not in page and "关闭" not in page, "a required factor cannot be off"
        client.get("/logout/")
    assert [a for a, _, _ in log_entries(desk_app, username)][-3:] == [
        "mfa_enabled", "login", "logout"]
    assert secret


def test_api_login_needs_the_code(desk_app: Any) -> None:
    _uid, username = make_user(desk_app, "viewer")
    _cid, clerk = make_user(desk_app, "clerk")
    with desk_app.test_client() as client:
        sign_in(client, username)
        secret, _codes = enrol(client)
        client.get("/logout/")
    url = "/api/v1/security/login"
    body = {"username": username, "password": PASSWORD, "provider": "db"}
    with desk_app.test_client() as api:
        missing = api.post(url, json=body, headers={"Accept-Language": "zh"})
        assert missing.status_code == 401
        assert "totp" in missing.json["message"] and "验证码" in missing.json["message"]
        assert api.post(url, json={**body, "totp": "123456"}).status_code == 401
        ok = api.post(url, json={**body, "totp": next_code(secret, 1)})
        assert ok.status_code == 200 and ok.json["access_token"]
        token = ok.json["access_token"]
        listed = api.get("/api/v1/ticket/", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200
        not_enrolled = api.post(url, json={**body, "username": clerk})
        assert not_enrolled.status_code == 401
    reasons = [d.get("reason") for a, d, _ in log_entries(desk_app, username)
               if a == "login_failed"]
    assert reasons[-2:] == ["code_missing", "wrong_code"]
    assert log_entries(desk_app, clerk)[-1][1]["reason"] == "not_enrolled"


def test_wrong_codes_are_rate_limited_in_redis(app_factory: Any, schema_path: Path,
                                               redis_url: str) -> None:
    app = app_factory(schema_path, "sqlite", RATELIMIT_ENABLED=True,
                      AUTH_RATE_LIMIT="3 per minute", RATELIMIT_STORAGE_URI=redis_url,
                      RATELIMIT_KEY_PREFIX=f"sdmfa{uuid.uuid4().hex[:6]}")
    _uid, username = make_user(app, "viewer")
    with app.test_client() as client:
        sign_in(client, username)
        secret, _codes = enrol(client)
        client.get("/logout/")
        sign_in(client, username)
        answers = [client.post("/account/mfa/verify", data={"code": "111111"}).status_code
                   for _ in range(4)]
        assert answers[:3] == [200, 200, 200] and answers[3] == 429, answers
        # Even the right code waits: the account's allowance is used up.
        assert client.post("/account/mfa/verify",
                           data={"code": next_code(secret, 1)}).status_code == 429
        api = client.post("/api/v1/security/login", json={
            "username": username, "password": PASSWORD, "totp": next_code(secret, 1)})
        assert api.status_code == 429
    assert log_entries(app, username)[-1][1]["reason"] == "locked_out"


def test_second_step_needs_csrf(app_factory: Any, schema_path: Path) -> None:
    app = app_factory(schema_path, "sqlite", WTF_CSRF_ENABLED=True)
    _uid, username = make_user(app, "clerk")
    with app.test_client() as client:
        page = client.get("/login/").data.decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        client.post("/login/", data={"username": username, "password": PASSWORD,
                                     "csrf_token": token})
        enrol_page = client.get("/account/mfa/enrol").data.decode()
        secret = secret_from(enrol_page)
        refused = client.post("/account/mfa/confirm", data={"code": next_code(secret)})
        assert refused.status_code == 400
        token = re.search(r'name="csrf_token" value="([^"]+)"', enrol_page).group(1)
        accepted = client.post("/account/mfa/confirm",
                               data={"code": next_code(secret), "csrf_token": token})
        assert accepted.status_code == 200


@pytest.mark.parametrize("proxies, expected", [(0, "127.0.0.1"), (1, "203.0.113.9")])
def test_login_log_ip_trusts_forwarded_for_only_with_proxy_count(
        app_factory: Any, schema_path: Path, proxies: int, expected: str) -> None:
    app = app_factory(schema_path, "sqlite", PROXY_COUNT=proxies)
    _uid, username = make_user(app, "viewer")
    forwarded = {"X-Forwarded-For": "203.0.113.9", "User-Agent": "Mozilla/5.0 TestPhone"}
    with app.test_client() as client:
        sign_in(client, username, "wrong-Password-1", **forwarded)
        sign_in(client, f"nobody-{uuid.uuid4().hex[:4]}", **forwarded)
        sign_in(client, username, **forwarded)
        client.get("/logout/", headers=forwarded)
    entries = log_entries(app, username)
    assert [a for a, _, _ in entries] == ["login_failed", "login", "logout"]
    assert {ip for _, _, ip in entries} == {expected}
    assert entries[0][1]["reason"] == "wrong_password"
    assert entries[1][1]["agent"] == "Mozilla/5.0 TestPhone"


def test_login_log_page_filters_and_exports(desk_app: Any) -> None:
    _aid, auditor = make_user(desk_app, "auditor")
    _vid, viewer = make_user(desk_app, "viewer")
    stranger = f"nobody-{uuid.uuid4().hex[:6]}"
    with desk_app.test_client() as client:
        sign_in(client, stranger)
        sign_in(client, viewer, "wrong-Password-1")
    with desk_app.test_client() as client:
        assert sign_in(client, auditor).status_code == 302
        client.get("/lang/en")
        page = client.get(f"/security/login-log/?outcome=failure&user={stranger}")
        text = page.data.decode()
        assert page.status_code == 200 and stranger in text and "Unknown user" in text
        assert viewer not in text
        all_failures = client.get("/security/login-log/?outcome=failure").data.decode()
        assert "Wrong password" in all_failures and viewer in all_failures
        wildcard = client.get("/security/login-log/?user=%25").data.decode()
        assert stranger not in wildcard, "a typed % is a character, not a wildcard"
        future = client.get("/security/login-log/?since=2999-01-01").data.decode()
        assert stranger not in future
        export = client.get("/security/login-log/export.csv?outcome=failure")
        assert export.status_code == 200
        rows = list(csv.reader(io.StringIO(export.data.decode("utf-8-sig"))))
        assert rows[0][:3] == ["Time (UTC)", "User", "Outcome"]
        assert any(r[1] == stranger and r[3] == "Unknown user" for r in rows[1:])
    with desk_app.test_client() as client:
        sign_in(client, viewer)
        denied = client.get("/security/login-log/")
        assert denied.status_code in (302, 403)
        assert client.get("/security/login-log/export.csv").status_code in (302, 403)


@pytest.mark.parametrize("backend", ["mariadb"])
def test_mariadb_smoke_enrol_and_sign_in(app_factory: Any, schema_path: Path,
                                         backend: str) -> None:
    app = app_factory(schema_path, backend)
    _uid, username = make_user(app, "clerk")
    with app.test_client() as client:
        sign_in(client, username)
        secret, codes = enrol(client)
        client.get("/logout/")
        sign_in(client, username)
        assert client.post("/account/mfa/verify", data={"code": codes[0]}).status_code == 302
        assert client.get("/ticket/list/").status_code == 200
    assert secret


def test_every_shipped_schema_keeps_mfa_optional_unless_asked() -> None:
    """The shipped schemas parse; a role without `mfa` stays optional."""
    from app.schema import load_spec

    root = Path(__file__).resolve().parents[2]
    for path in (root / "schema" / "crm.yaml", root / "schema" / "examples" / "library.yaml"):
        spec = load_spec(str(path))
        assert spec.roles
        assert {role.mfa for role in spec.roles} <= {"optional", "required"}


def test_cli_reset_removes_the_factor_and_ends_sessions(desk_app: Any) -> None:
    from app.security.mfa_cli import mfa_cli

    user_id, username = make_user(desk_app, "clerk")
    with desk_app.test_client() as client:
        sign_in(client, username)
        enrol(client)
        result = desk_app.test_cli_runner().invoke(mfa_cli, ["reset", username])
        assert result.exit_code == 0, result.output
        assert mfa_row(desk_app, user_id) is None
        assert "/login/" in client.get("/ticket/list/").location, "its sessions ended"
        sign_in(client, username)
        assert client.get("/ticket/list/").location.endswith("/account/mfa/enrol")
    resets = [d for a, d, _ in log_entries(desk_app, username) if a == "mfa_disabled"]
    assert resets and resets[-1]["reset"] is True, log_entries(desk_app, username)
    missing = desk_app.test_cli_runner().invoke(mfa_cli, ["reset", "no-such-user"])
    assert missing.exit_code != 0


def test_key_rotation_re_encrypts_the_secrets(app_factory: Any, schema_path: Path) -> None:
    from cryptography.fernet import Fernet

    from app.security.cli import keys

    app = app_factory(schema_path, "sqlite")
    user_id, username = make_user(app, "viewer")
    with app.test_client() as client:
        sign_in(client, username)
        secret, _codes = enrol(client)
        client.get("/logout/")
    before = mfa_row(app, user_id).secret
    new_key = Fernet.generate_key().decode()
    app.config["FIELD_ENCRYPTION_KEYS"] = [new_key, *app.config["FIELD_ENCRYPTION_KEYS"]]
    app.extensions.pop("schemadesk_cipher", None)
    result = app.test_cli_runner().invoke(keys, ["rotate"])
    assert result.exit_code == 0, result.output
    assert mfa_row(app, user_id).secret != before
    app.config["FIELD_ENCRYPTION_KEYS"] = [new_key]  # the old key is gone: codes still work
    app.extensions.pop("schemadesk_cipher", None)
    with app.test_client() as client:
        sign_in(client, username)
        done = client.post("/account/mfa/verify", data={"code": next_code(secret, 1)})
        assert done.status_code == 302 and "verify" not in done.location


def test_backups_keep_the_second_factor_but_not_sessions(desk_app: Any) -> None:
    """MFA secrets are needed after a restore (and are ciphertext); sessions are not."""
    from app.backup.engine import table_names

    with desk_app.app_context(), state().db.engine.connect() as conn:
        names = table_names(conn)
    assert "user_mfa" in names
    assert "user_session" not in names
