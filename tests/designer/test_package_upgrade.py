"""A package upgrade after designer changes: the two revision chains are merged, not stuck.

The designer's revisions (in the instance) continue the package's chain as it
was; a newer package adds its own revision after the same point. `db upgrade`
must then apply both and leave one head, on every backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from app.designer.versions import apply_change, current_version
from app.migrate import alembic_config, current_revision, head_revision, upgrade
from app.state import state
from tests.conftest import BACKENDS, LIBRARY
from tests.designer.test_versions import first_entity, rebuilt, with_field

PACKAGE_REVISION = '''"""package upgrade: a probe table"""
from alembic import op
import sqlalchemy as sa

revision = "feed00c0ffee"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("pkg_upgrade_probe", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("pkg_upgrade_probe")
'''


@pytest.mark.parametrize("backend", BACKENDS)
def test_designer_revision_and_newer_package_revision_are_merged(app_factory, backend):
    app = app_factory(LIBRARY, backend)
    package_dir = Path(app.config["MIGRATIONS_DIR"])
    with app.app_context():
        package_head = head_revision()
        entity = first_entity()
        apply_change(with_field(current_version().yaml_text, entity), author="admin",
                     comment="a designer field")
        designer_head = head_revision()
        assert designer_head != package_head
    # the package is upgraded: a revision after the head it shipped before
    (package_dir / "feed00c0ffee_probe.py").write_text(
        PACKAGE_REVISION.format(down=package_head), encoding="utf-8")
    app2 = rebuilt(app)
    with app2.app_context():
        assert head_revision() is None  # two heads until merged
        upgrade()
        heads = ScriptDirectory.from_config(alembic_config()).get_heads()
        assert len(heads) == 1 and current_revision() == heads[0] == head_revision()
        merge = ScriptDirectory.from_config(alembic_config()).get_revision(heads[0])
        assert set(merge.down_revision) == {designer_head, "feed00c0ffee"}
        assert Path(merge.path).parent == Path(app2.instance_path) / "migrations" / \
            state().spec.stem
        inspector = sa.inspect(state().db.engine)
        assert "pkg_upgrade_probe" in inspector.get_table_names()
        table = state().models.model(entity).__table__.name
        assert "designer_note" in [c["name"] for c in inspector.get_columns(table)]
        upgrade()  # nothing left to do, no second merge
        assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1
