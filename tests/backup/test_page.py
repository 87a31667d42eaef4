"""/backups/list/: admins list, create (as a job), verify, download and restore backups."""

from __future__ import annotations

import pytest

from app.backup.store import list_backups
from tests.backup.seed import seed_crm, table_checksums
from tests.conftest import CRM, login


@pytest.fixture
def page_app(app_factory):
    app = app_factory(CRM, "sqlite", JOB_INLINE_SYNC=True)
    with app.app_context():
        seed_crm(5)
    return app


def test_admin_creates_lists_verifies_and_downloads_a_backup(page_app):
    with page_app.test_client() as client:
        login(client)
        empty = client.get("/backups/list/").data.decode()
        assert "No backups yet" in empty and "The database matches the schema." in empty
        response = client.post("/backups/create", data={"note": "before import"})
        assert response.status_code == 302
        with page_app.app_context():
            [backup] = list_backups()
        assert backup.status and backup.status["ok"]
        page = client.get("/backups/list/").data.decode()
        assert backup.name in page and "before import" in page and "Verified" in page
        assert f">{backup.rows}<" in page
        download = client.get(f"/backups/download/{backup.name}")
        assert download.status_code == 200
        assert download.data == backup.path.read_bytes()
        assert client.get("/backups/download/..%2Fsecret_key").status_code in (302, 404)


def test_restore_from_page_needs_the_name_typed(page_app):
    with page_app.test_client() as client:
        login(client)
        client.post("/backups/create", data={"note": "x"})
        with page_app.app_context():
            [backup] = list_backups()
            before = table_checksums()
            seed_crm(3, prefix="b")
        client.post(f"/backups/restore/{backup.name}", data={"confirm": "wrong"})
        with page_app.app_context():
            assert table_checksums()["customer"][0] == 8
        client.post(f"/backups/restore/{backup.name}", data={"confirm": backup.name})
        with page_app.app_context():
            after = table_checksums()
            assert after["customer"] == before["customer"]
            assert len(list_backups()) == 2  # the safety backup of what was replaced


def test_operator_cannot_see_backups(page_app):
    with page_app.app_context():
        from flask import current_app

        sm = current_app.appbuilder.sm
        sm.add_user("op1", "Op", "One", "op1@example.com", sm.find_role("operator"),
                     password="Op-Pass-2024!x")
    with page_app.test_client() as client:
        login(client, "op1", "Op-Pass-2024!x")
        response = client.get("/backups/list/")
        assert response.status_code in (302, 403)
        assert client.post("/backups/create").status_code in (302, 403)
        with page_app.app_context():
            assert list_backups() == []
