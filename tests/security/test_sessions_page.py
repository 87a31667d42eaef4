"""Signed-in sessions (在线用户): admins end any, users end their own others, audited."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from app.state import state
from tests.conftest import ADMIN_PASSWORD
from tests.security.conftest import PASSWORD, make_user
from tests.security.test_mfa import BACKENDS, SCHEMA  # noqa: F401 - the same small schema


@pytest.fixture(scope="module")
def desk_app(request: pytest.FixtureRequest, app_factory: Any,
             tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("sessions_schema") / "desk.yaml"
    path.write_text(SCHEMA, encoding="utf-8")
    return app_factory(path, request.param)


pytestmark = pytest.mark.parametrize("desk_app", BACKENDS, indirect=True)


def signed_in(app: Any, username: str, password: str = PASSWORD, agent: str = "Test") -> Any:
    client = app.test_client()
    client.get("/lang/en")
    answer = client.post("/login/", data={"username": username, "password": password},
                         headers={"User-Agent": agent})
    assert answer.status_code == 302
    return client


def live_ids(app: Any, user_id: int) -> list[int]:
    with app.app_context():
        table = state().models.system["user_session"]
        with state().db.engine.connect() as conn:
            return list(conn.execute(sa.select(table.c.id).where(
                table.c.user_id == user_id, table.c.revoked_at.is_(None))).scalars())


def audit_actions(app: Any, username: str) -> list[tuple[str, str]]:
    """(action, actor) of the session entries on `username`."""
    with app.app_context():
        table = state().models.system["audit_log"]
        with state().db.engine.connect() as conn:
            return [(r.action, r.actor_name) for r in conn.execute(
                sa.select(table).where(table.c.record_title == username,
                                       table.c.action == "session_ended").order_by(table.c.id))]


def is_signed_out(client: Any) -> bool:
    answer = client.get("/ticket/list/")
    return answer.status_code == 302 and "/login/" in answer.location


def test_admin_ends_a_session_and_that_browser_is_signed_out(desk_app: Any) -> None:
    user_id, username = make_user(desk_app, "viewer")
    user = signed_in(desk_app, username, agent="Mozilla/5.0 OperatorPC")
    assert user.get("/ticket/list/").status_code == 200
    admin = signed_in(desk_app, "admin", ADMIN_PASSWORD)
    page = admin.get(f"/security/sessions/?user={username}").data.decode()
    assert username in page and "OperatorPC" in page
    (session_id,) = live_ids(desk_app, user_id)
    assert f'action="/security/sessions/{session_id}/end"' in page
    assert admin.get(f"/security/sessions/{session_id}/end").status_code == 405  # POST only
    ended = admin.post(f"/security/sessions/{session_id}/end")
    assert ended.status_code == 302
    assert is_signed_out(user)
    assert live_ids(desk_app, user_id) == []
    assert audit_actions(desk_app, username) == [("session_ended", "admin")]
    assert admin.post(f"/security/sessions/{session_id}/end").status_code == 404
    log = admin.get(f"/security/login-log/?outcome=ended&user={username}").data.decode()
    assert "Session ended" in log and "by admin" in log


def test_user_signs_out_their_other_sessions(desk_app: Any) -> None:
    user_id, username = make_user(desk_app, "viewer")
    laptop = signed_in(desk_app, username, agent="Laptop")
    phone = signed_in(desk_app, username, agent="Phone")
    tablet = signed_in(desk_app, username, agent="Tablet")
    page = laptop.get("/account/security").data.decode()
    assert "Phone" in page and "Tablet" in page and "This browser" in page
    # End one by its button, then all the others at once.
    tablet_id = max(live_ids(desk_app, user_id))
    assert laptop.post(f"/account/sessions/{tablet_id}/end").status_code == 302
    assert is_signed_out(tablet) and not is_signed_out(phone)
    assert laptop.post("/account/sessions/end-others").status_code == 302
    assert is_signed_out(phone)
    assert laptop.get("/ticket/list/").status_code == 200, "the session that asked stays"
    assert len(live_ids(desk_app, user_id)) == 1
    assert [a for a, _ in audit_actions(desk_app, username)] == ["session_ended"] * 2


def test_non_admin_cannot_see_or_end_others_sessions(desk_app: Any) -> None:
    victim_id, victim = make_user(desk_app, "viewer")
    _aid, auditor = make_user(desk_app, "auditor")
    signed_in(desk_app, victim)
    (victim_session,) = live_ids(desk_app, victim_id)
    for role_user in (auditor, make_user(desk_app, "viewer")[1]):
        client = signed_in(desk_app, role_user)
        listing = client.get("/security/sessions/")
        assert listing.status_code in (302, 403)
        assert victim not in listing.data.decode()
        assert client.post(f"/security/sessions/{victim_session}/end").status_code in (302, 403)
        assert client.post(f"/account/sessions/{victim_session}/end").status_code == 404
        own = client.get("/account/security").data.decode()
        assert victim not in own
    assert live_ids(desk_app, victim_id) == [victim_session]


def test_pages_speak_chinese_and_link_enrolment(desk_app: Any) -> None:
    admin = signed_in(desk_app, "admin", ADMIN_PASSWORD)
    home = admin.get("/account/security").data.decode()
    assert re.search(r'href="/account/mfa/enrol"', home)
    admin.get("/lang/zh")
    listing = admin.get("/security/sessions/").data.decode()
    assert "在线用户" in listing and "当前浏览器" in listing
    assert 'href="/account/security"' in listing, "the user menu links the account page"
    assert "登录日志" in admin.get("/security/login-log/").data.decode()
