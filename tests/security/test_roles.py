"""Roles from the YAML: exact grants, revocation, "*", idempotence, concurrency, CLI."""

from __future__ import annotations

import threading

from flask import Flask

from app.security.roles import sync_roles
from tests.security.conftest import PASSWORD


def pairs_of(app: Flask, role: str) -> set[tuple[str, str]]:
    with app.app_context():
        r = app.appbuilder.sm.find_role(role)
        return {(pv.permission.name, pv.view_menu.name) for pv in r.permissions}


def test_grants_become_exact_permissions(crm_app: Flask) -> None:
    operator = pairs_of(crm_app, "operator")
    assert ("can_read", "customer") in operator
    assert ("can_export", "customer") in operator
    assert ("can_delete", "customer") not in operator
    assert ("can_view_sensitive", "customer") not in operator
    assert ("can_read", "audit_log") not in operator
    auditor = pairs_of(crm_app, "auditor")
    assert {("can_read", e) for e in ("customer", "tag", "article", "sales_order")} <= auditor
    assert ("can_read", "audit_log") in auditor and ("can_export", "audit_log") in auditor
    assert not {p for p in auditor if p[0] in ("can_create", "can_update", "can_delete")}
    manager = pairs_of(crm_app, "manager")
    assert ("can_view_sensitive", "customer") in manager
    assert ("can_read", "audit_log") not in manager  # "*" is the schema's entities only
    admin = pairs_of(crm_app, "Admin")
    assert ("can_view_sensitive", "customer") in admin and ("can_read", "backup") in admin


def test_sync_revokes_hand_added_grants_and_is_idempotent(crm_app: Flask) -> None:
    with crm_app.app_context():
        sm = crm_app.appbuilder.sm
        role = sm.find_role("service_agent")
        sm.add_permission_role(role, sm.find_permission_view_menu("can_delete", "customer"))
        assert ("can_delete", "customer") in pairs_of(crm_app, "service_agent")
        first = sync_roles()
    assert ("can_delete", "customer") not in pairs_of(crm_app, "service_agent")
    before = {r: pairs_of(crm_app, r) for r in ("operator", "auditor", "manager", "Admin")}
    with crm_app.app_context():
        assert sync_roles() == first
    assert before == {r: pairs_of(crm_app, r) for r in before}


def test_concurrent_syncs_do_not_fail(crm_app: Flask) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with crm_app.app_context():
                sync_roles()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ("can_read", "customer") in pairs_of(crm_app, "operator")


def test_cli_user_create_with_role_and_password(crm_app: Flask) -> None:
    from app.cli import user_create

    runner = crm_app.test_cli_runner()
    result = runner.invoke(user_create, ["clerk1", "--role", "auditor", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    result = runner.invoke(user_create, ["clerk2", "--role", "nosuch", "--password", PASSWORD])
    assert result.exit_code != 0 and "nosuch" in result.output
    with crm_app.test_client() as client:
        response = client.post("/login/", data={"username": "clerk1", "password": PASSWORD})
        assert response.status_code == 302
        assert client.get("/customer/list/").status_code == 200
        assert client.get("/customer/add").status_code in (302, 403)


def test_role_screen_refuses_to_change_yaml_roles(sqlite_crm_app: Flask, sqlite_admin_client
                                                   ) -> None:
    before = pairs_of(sqlite_crm_app, "operator")
    with sqlite_crm_app.app_context():
        sm = sqlite_crm_app.appbuilder.sm
        role_id = sm.find_role("operator").id
        delete_pv = sm.find_permission_view_menu("can_delete", "customer").id
    page = sqlite_admin_client.post(f"/roles/edit/{role_id}", data={
        "name": "operator", "permissions": [str(delete_pv)]}, follow_redirects=True)
    assert "managed by the schema file" in page.data.decode()
    assert pairs_of(sqlite_crm_app, "operator") == before
    sqlite_admin_client.post(f"/roles/delete/{role_id}", follow_redirects=True)
    assert pairs_of(sqlite_crm_app, "operator") == before


def test_matrix_page_for_admin_and_auditor_only(sqlite_crm_app: Flask) -> None:
    from tests.conftest import login
    from tests.security.conftest import make_user

    for role, allowed in (("auditor", True), ("operator", False)):
        _uid, name = make_user(sqlite_crm_app, role)
        with sqlite_crm_app.test_client() as client:
            login(client, name, PASSWORD)
            response = client.get("/security/matrix/")
            if allowed:
                assert response.status_code == 200
                assert "from schema" in response.data.decode()
                assert client.get("/security/matrix/csv").data.startswith(b"role,entity")
            else:
                assert response.status_code in (302, 403)
