"""Migrations: the committed CRM revision matches the models on every backend."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from app.migrate import current_revision, head_revision, pending_changes, plan
from tests.conftest import LIBRARY, login


def test_committed_crm_migration_matches_models(crm_app: Flask) -> None:
    with crm_app.app_context():
        assert current_revision() == head_revision()
        assert plan() == []


def test_schema_with_new_field_shows_clear_page_until_applied(
    app_factory, tmp_path: Path
) -> None:  # noqa: ANN001
    app = app_factory(LIBRARY, "sqlite")
    with app.app_context():
        from app.state import state

        database_url = str(state().db.engine.url)
        migrations = app.config["MIGRATIONS_DIR"]
        instance = app.config["INSTANCE_PATH"]
    changed = tmp_path / "library.yaml"
    changed.write_text(
        LIBRARY.read_text(encoding="utf-8").replace(
            "  author:\n",
            "  author:\n",
        ).replace(
            "    fields:\n",
            "    fields:\n      nickname: {type: string, label: {en: Nickname, zh: 昵称}}\n",
            1,
        ),
        encoding="utf-8",
    )
    from app import create_app

    app2 = create_app(
        {
            "SCHEMA_PATH": str(changed),
            "DATABASE_URL": database_url,
            "MIGRATIONS_DIR": migrations,
            "INSTANCE_PATH": instance,
            "WTF_CSRF_ENABLED": False,
        }
    )
    with app2.app_context():
        assert any("nickname" in change for change in pending_changes())
    with app2.test_client() as client:
        response = client.get("/login/")
        assert response.status_code == 503
        assert "schemadesk schema apply" in response.data.decode()
    with app2.app_context():
        from app.migrate import apply

        revision = apply("add nickname")
        assert revision is not None
        assert plan() == []
    with app2.test_client() as client:
        login(client)
        assert client.get("/branch/list/").status_code == 200
