"""The notification centre: own notifications only, mark read, a link only if readable."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.i18n import N_
from app.notify import notify
from app.state import state
from tests.conftest import ADMIN_PASSWORD
from tests.notify.conftest import add_record, login_as, make_person, unique


def _notify(app: Flask, user_id: int, entity: str | None = None, record_id: int | None = None,
            message: str = N_("Reminder: %(record)s (%(field)s: %(date)s)"),
            params: dict[str, Any] | None = None) -> None:
    with app.app_context():
        session = state().db.session
        notify(session, [user_id], message,
               params or {"field": {"en": "Next follow-up", "zh": "下次跟进日期"},
                          "date": "2026-11-25"},
               entity=entity, record_id=record_id)
        session.commit()
        session.remove()


def test_operator_sees_own_notifications_with_links_only_to_readable_records(
        crm_app: Flask) -> None:
    alice = make_person(crm_app, "operator")
    bob = make_person(crm_app, "operator")
    own = unique("Own Co ")
    other = unique("Other Co ")
    own_id = add_record(crm_app, "customer", {"name": own, "owner": alice["employee_id"]})
    other_id = add_record(crm_app, "customer", {"name": other, "owner": bob["employee_id"]})
    _notify(crm_app, alice["user_id"], "customer", own_id)
    _notify(crm_app, alice["user_id"], "customer", other_id)
    _notify(crm_app, bob["user_id"], "customer", other_id,
            params={"field": "x", "date": "bob-only"})
    with crm_app.test_client() as client:
        login_as(client, alice["username"])
        page = client.get("/notifications/").get_data(as_text=True)
        assert f"Reminder: {own} (Next follow-up: 2026-11-25)" in page
        assert f'href="/customer/show/{own_id}"' in page
        # alice does not reach bob's customer: no title, no link
        assert other not in page and f"/customer/show/{other_id}" not in page
        assert f"Reminder: #{other_id}" in page
        assert "bob-only" not in page
        assert page.count("sd-notification sd-unread") == 2
        data = client.get("/api/v1/notifications/").get_json()
        assert data["unread"] == 2 and len(data["result"]) == 2
        assert {r["url"] for r in data["result"]} == {f"/customer/show/{own_id}", None}


def test_mark_one_and_all_read_and_the_bell_counts(crm_app: Flask) -> None:
    carol = make_person(crm_app, "operator")
    for _ in range(3):
        _notify(crm_app, carol["user_id"])
    with crm_app.test_client() as client:
        login_as(client, carol["username"])
        home = client.get("/notifications/").get_data(as_text=True)
        assert '<span class="badge sd-bell-count">3</span>' in home
        first = client.get("/api/v1/notifications/").get_json()["result"][0]["id"]
        assert client.post(f"/notifications/{first}/read").status_code == 302
        data = client.get("/api/v1/notifications/").get_json()
        assert data["unread"] == 2
        assert [r["read"] for r in data["result"]] == [True, False, False]
        client.post("/notifications/read-all")
        page = client.get("/notifications/").get_data(as_text=True)
        assert "sd-unread" not in page and "sd-bell-count" not in page


def test_someone_elses_notification_cannot_be_marked_read(crm_app: Flask) -> None:
    dave = make_person(crm_app, "operator")
    erin = make_person(crm_app, "operator")
    _notify(crm_app, erin["user_id"])
    with crm_app.test_client() as client:
        login_as(client, erin["username"])
        erins = client.get("/api/v1/notifications/").get_json()["result"][0]["id"]
    with crm_app.test_client() as client:
        login_as(client, dave["username"])
        assert client.post(f"/api/v1/notifications/{erins}/read").get_json() == {"marked": 0}
    with crm_app.test_client() as client:
        login_as(client, erin["username"])
        assert client.get("/api/v1/notifications/").get_json()["unread"] == 1


def test_text_is_in_the_readers_language_and_the_choice_is_remembered(crm_app: Flask) -> None:
    from app.notify.center import user_language

    frank = make_person(crm_app, "operator")
    _notify(crm_app, frank["user_id"])
    with crm_app.test_client() as client:
        login_as(client, frank["username"])  # switches to /lang/en
        with crm_app.app_context():
            assert user_language(frank["user_id"]) == "en"
        client.get("/lang/zh")
        with crm_app.app_context():
            assert user_language(frank["user_id"]) == "zh"
        page = client.get("/notifications/").get_data(as_text=True)
        assert "提醒：" in page and "（下次跟进日期：2026-11-25）" in page
    with crm_app.test_client() as client:  # a new browser signs in: Chinese again
        client.post("/login/", data={"username": frank["username"], "password": ADMIN_PASSWORD})
        page = client.get("/notifications/").get_data(as_text=True)
        assert "（下次跟进日期：2026-11-25）" in page


def test_anonymous_gets_no_notifications(crm_app: Flask) -> None:
    with crm_app.test_client() as client:
        assert client.get("/api/v1/notifications/").status_code == 401
        assert client.get("/notifications/").status_code == 302
