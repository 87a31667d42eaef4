"""`schemadesk demo seed` fills every entity of any schema."""

from __future__ import annotations

import sqlalchemy as sa

from app.demo import demo
from app.state import state
from tests.conftest import CRM, LIBRARY


def test_demo_seed_fills_every_entity_of_crm_and_library(app_factory) -> None:
    for schema in (CRM, LIBRARY):
        app = app_factory(schema, "sqlite")
        result = app.test_cli_runner().invoke(demo, ["seed", "--rows", "30", "--seed", "7"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            for entity in state().spec.entities:
                table = state().models.table(entity.name)
                count = state().db.session.execute(
                    sa.select(sa.func.count()).select_from(table)).scalar_one()
                assert count >= 5, entity.name
