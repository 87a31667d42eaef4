"""The REST API path: JWT sign-in and changes made through /api/v1 are recorded."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.audit.conftest import entries, last_id, unique
from tests.conftest import ADMIN_PASSWORD


def token(client: Any) -> str:
    response = client.post("/api/v1/security/login", json={
        "username": "admin", "password": ADMIN_PASSWORD, "provider": "db"})
    assert response.status_code == 200, response.data[:300]
    return response.json["access_token"]


def test_api_sign_in_and_changes_are_recorded_with_api_source(crm_app: Flask) -> None:
    with crm_app.app_context():
        mark = last_id()
    with crm_app.test_client() as client:
        headers = {"Authorization": f"Bearer {token(client)}"}
        bad = client.post("/api/v1/security/login", json={
            "username": "admin", "password": "nope", "provider": "db"})
        assert bad.status_code == 401
        name = unique("API ")
        created = client.post("/api/v1/tag/", json={"name": name, "color": "red"},
                              headers=headers)
        assert created.status_code == 201, created.data[:300]
        tag_id = created.json["id"]
        assert client.put(f"/api/v1/tag/{tag_id}", json={"color": "green"},
                          headers=headers).status_code == 200
        assert client.delete(f"/api/v1/tag/{tag_id}", headers=headers).status_code == 200
    with crm_app.app_context():
        rows = entries(mark)
    auth = [(r["action"], r["source"]) for r in rows if r["action"].startswith("log")]
    assert auth == [("login", "api"), ("login_failed", "api")]
    changes = [r for r in rows if r["entity"] == "tag" and r["record_id"] == str(tag_id)]
    assert [r["action"] for r in changes] == ["create", "update", "delete"]
    assert {r["source"] for r in changes} == {"api"}
    assert {r["actor_name"] for r in changes} == {"admin"}
    assert changes[1]["changes"] == {"color": {"before": "red", "after": "green"}}
