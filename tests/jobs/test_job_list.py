"""/jobs/list/: users see their own runs, admins every run; re-run and cancel."""

from __future__ import annotations

import uuid

from flask import Flask

from app.context import Actor
from app.jobs import enqueue, get_run, wait
from tests.conftest import ADMIN_PASSWORD, login


def test_operator_sees_own_runs_and_admin_sees_all(sqlite_crm_app: Flask) -> None:
    app = sqlite_crm_app
    name = f"op_{uuid.uuid4().hex[:6]}"
    with app.app_context():
        sm = app.appbuilder.sm
        user = sm.add_user(name, "O", "P", f"{name}@example.com", sm.find_role("operator"),
                           password=ADMIN_PASSWORD)
        own = enqueue("wait", {"seconds": 0.1}, Actor(user.id, name, "ui"))
        other = enqueue("wait", {"seconds": 0.1}, Actor(None, "cli", "cli"))
        wait(own)
        wait(other)
    with app.test_client() as client:
        login(client, name, ADMIN_PASSWORD)
        ids = {r["id"] for r in client.get("/jobs/api/runs").get_json()["runs"]}
        assert own in ids and other not in ids
        assert client.get(f"/jobs/download/{other}/result").status_code == 404
        response = client.post(f"/jobs/rerun/{own}")
        assert response.status_code == 302
    with app.test_client() as client:
        login(client)
        runs = client.get("/jobs/api/runs").get_json()["runs"]
        ids = {r["id"] for r in runs}
        assert {own, other} <= ids
        rerun_id = max(ids)
        with app.app_context():
            assert wait(rerun_id)["status"] == "done"
            assert get_run(rerun_id)["user_id"] is not None
        page = client.get("/jobs/list/").data.decode()
        assert 'id="sd-jobs"' in page and "/static/jobs/jobs.js" in page


def test_anonymous_is_sent_to_login(sqlite_crm_app: Flask) -> None:
    with sqlite_crm_app.test_client() as client:
        response = client.get("/jobs/list/")
        assert response.status_code == 302 and "login" in response.location
