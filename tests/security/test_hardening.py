"""Hardening: headers and CSP nonce, cookies, CSRF, login rate limit, passwords, secrets."""

from __future__ import annotations

import re
import uuid

import pytest
from flask import Flask

from app.security.headers import password_policy
from tests.conftest import ADMIN_PASSWORD, CRM, login


def test_security_headers_and_nonced_scripts(sqlite_admin_client) -> None:
    response = sqlite_admin_client.get("/customer/list/")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    page = response.data.decode()
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts, "the list page has scripts"
    assert all(f'nonce="{nonce}"' in tag for tag in scripts), scripts
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    second = sqlite_admin_client.get("/customer/list/").headers["Content-Security-Policy"]
    assert second != csp  # a fresh nonce per response


def test_session_cookie_flags(sqlite_crm_app: Flask) -> None:
    with sqlite_crm_app.test_client() as client:
        response = client.post("/login/", data={"username": "admin", "password": ADMIN_PASSWORD})
        cookie = response.headers.get("Set-Cookie", "")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_csrf_required_on_forms(app_factory) -> None:
    app = app_factory(CRM, "sqlite", WTF_CSRF_ENABLED=True)
    with app.test_client() as client:
        page = client.get("/login/").data.decode()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        refused = client.post("/login/", data={"username": "admin", "password": ADMIN_PASSWORD})
        assert refused.status_code in (200, 400)  # form re-shown with the CSRF error
        assert client.get("/customer/list/").status_code == 302  # not signed in
        ok = client.post("/login/", data={"username": "admin", "password": ADMIN_PASSWORD,
                                          "csrf_token": token})
        assert ok.status_code == 302
        name = f"csrf-{uuid.uuid4().hex[:6]}"
        response = client.post("/customer/add", data={"name": name, "kind": "company",
                                                      "points": "0"})
        assert response.status_code in (200, 400)
        assert name not in client.get("/customer/list/").data.decode()


def test_login_rate_limited_in_redis(app_factory, redis_url: str) -> None:
    app = app_factory(CRM, "sqlite", RATELIMIT_ENABLED=True, AUTH_RATE_LIMIT="3 per minute",
                      RATELIMIT_STORAGE_URI=redis_url,
                      RATELIMIT_KEY_PREFIX=f"sdtest{uuid.uuid4().hex[:6]}")
    with app.test_client() as client:
        codes = [client.post("/login/", data={"username": "admin", "password": "wrong"}).status_code
                 for _ in range(5)]
    assert all(code in (200, 302) for code in codes[:3]), codes
    assert codes[-1] == 429
    import redis

    keys = redis.Redis.from_url(redis_url).keys(f"*{app.config['RATELIMIT_KEY_PREFIX']}*")
    assert keys, "the limiter stores its counters in Redis"


def test_password_policy(sqlite_crm_app: Flask) -> None:
    from flask_appbuilder.exceptions import PasswordComplexityValidationError

    with sqlite_crm_app.test_request_context():
        for bad in ("short1", "onlyletterslong", "1234567890", "password1"):
            with pytest.raises(PasswordComplexityValidationError):
                password_policy(bad)
        password_policy("Harbour-Lights-77")


def test_password_policy_in_reset_form(sqlite_crm_app: Flask) -> None:
    from tests.security.conftest import PASSWORD, make_user

    _uid, name = make_user(sqlite_crm_app, "auditor")
    with sqlite_crm_app.test_client() as client:
        login(client, name, PASSWORD)
        page = client.post("/resetmypassword/form", data={"password": "abc",
                                                         "conf_password": "abc"})
        assert "at least 10 characters" in page.data.decode()


def test_production_refuses_default_secret(monkeypatch) -> None:
    from config import ConfigError, load_config

    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError):
        load_config({"PRODUCTION": "1"})
    with pytest.raises(ConfigError):
        load_config({"PRODUCTION": "1", "SECRET_KEY": "changeme"})
    config = load_config({"PRODUCTION": "1", "SECRET_KEY": "x" * 64})
    assert config["SESSION_COOKIE_SECURE"] is True
