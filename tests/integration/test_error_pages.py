"""Error pages: in the console's layout and the reader's language, JSON under /api/."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import CRM, LIBRARY, login


@pytest.fixture(scope="module", params=[CRM, LIBRARY], ids=["crm", "library"])
def app(request: pytest.FixtureRequest, app_factory: Callable[..., Any]) -> Any:
    return app_factory(request.param, "sqlite")


def test_missing_page_is_translated_with_menu_and_way_home(app: Any) -> None:
    with app.test_client() as client:
        login(client)
        client.get("/lang/zh")
        response = client.get("/no-such-page/", headers={"Referer": "http://localhost/dashboard/"})
        html = response.get_data(as_text=True)
        assert response.status_code == 404
        assert "页面不存在" in html and "sd-error-page" in html
        assert 'class="sd-sidebar"' in html  # the signed-in layout, menu included
        assert 'href="http://localhost/dashboard/"' in html  # back where the user came from
        assert "Not Found" not in html
        client.get("/lang/en")
        html = client.get("/no-such-page/").get_data(as_text=True)
        assert "Page not found" in html


def test_api_errors_stay_json(app: Any) -> None:
    with app.test_client() as client:
        response = client.get("/api/v1/no_such_entity/")
        assert response.status_code == 404
        assert response.is_json and response.json["code"] == 404


def test_signed_out_visitor_gets_the_page_without_a_menu(app: Any) -> None:
    with app.test_client() as client:
        response = client.get("/no-such-page/", headers={"Accept-Language": "zh-CN"})
        html = response.get_data(as_text=True)
        assert response.status_code == 404
        assert "页面不存在" in html and 'class="sd-sidebar"' not in html


def test_role_labels_replace_keys_on_the_user_and_role_screens(app: Any) -> None:
    from app.state import state

    with app.app_context():
        spec_role = state().spec.roles[0]
    with app.test_client() as client:
        login(client)
        client.get("/lang/zh")
        roles = client.get("/roles/list/").get_data(as_text=True)
        assert spec_role.label.zh in roles
        assert "can show on" not in roles and "SwaggerView" not in roles
        assert "系统管理员" in client.get("/users/list/").get_data(as_text=True)
        form = client.get("/users/add").get_data(as_text=True)
        assert f">{spec_role.label.zh}<" in form
        assert f">{spec_role.name}<" not in form


def test_yaml_role_users_still_reach_their_profile(app: Any) -> None:
    """The user screens are subclassed; their permission names must stay FAB's."""
    from app.state import state

    with app.app_context():
        sm = app.appbuilder.sm
        role = sm.find_role(state().spec.roles[-1].name)
        if sm.find_user(username="profile_probe") is None:
            sm.add_user(
                "profile_probe",
                "档案",
                "测试",
                "probe@example.com",
                role,
                password="Probe-Pass-2024!x",
            )
    with app.test_client() as client:
        login(client, "profile_probe", "Probe-Pass-2024!x")
        assert client.get("/users/userinfo/").status_code == 200


def test_a_crash_shows_the_translated_500_page(app_factory: Callable[..., Any]) -> None:
    app = app_factory(CRM, "sqlite", TESTING=False, PROPAGATE_EXCEPTIONS=False)

    def boom() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/boom-for-the-500-test", "boom", boom)
    with app.test_client() as client:
        login(client)
        client.get("/lang/zh")
        response = client.get("/boom-for-the-500-test")
        html = response.get_data(as_text=True)
        assert response.status_code == 500
        assert "出错了" in html and "sd-error-page" in html and "a bug" not in html


def test_yaml_role_edit_form_sends_to_its_page_and_screen_roles_read_as_words(app: Any) -> None:
    from app.state import state

    with app.app_context():
        sm = app.appbuilder.sm
        yaml_role = sm.find_role(state().spec.roles[0].name)
        public = sm.find_role(app.config.get("AUTH_ROLE_PUBLIC", "Public"))
        yaml_id, public_id = yaml_role.id, public.id
    with app.test_client() as client:
        login(client)
        client.get("/lang/zh")
        response = client.get(f"/roles/edit/{yaml_id}")
        assert response.status_code == 302 and f"/roles/show/{yaml_id}" in response.location
        form = client.get(f"/roles/edit/{public_id}").get_data(as_text=True)
        assert "查看 · " in form and "can_read on" not in form and "can show on" not in form
