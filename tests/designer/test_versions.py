"""Schema versions in the database: seed, guarded apply, confirmations, rollback, export.

Generated from the schemas: a field is added to the first entity of each schema
(through ruamel's round-trip, so comments stay), whatever its entities are.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from ruamel.yaml import YAML

from app import create_app
from app.designer.cli import schema_export
from app.designer.versions import (
    ChangeFailed,
    ChangeRefused,
    apply_change,
    compare_versions,
    current_version,
    list_versions,
    plan_change,
    reapply_version,
)
from app.migrate import ROOT, plan
from app.state import state
from tests.backup.seed import seed_crm
from tests.conftest import BACKENDS, CRM, LIBRARY

NEW_FIELD = "designer_note"
ROUND = "5e1f0a9c3d27"


def tree_digest(folder: Path) -> dict[str, str]:
    """File name -> sha256 of the files under `folder` (the source tree must not change).

    The round's CRM revision is left out: other work regenerates it while tests run.
    """
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and ROUND not in p.name}


def with_field(text: str, entity: str, name: str = NEW_FIELD) -> str:
    """The schema text with a string field added to `entity`, comments kept (round-trip)."""
    yaml = YAML(typ="rt")
    yaml.width = 4096
    doc = yaml.load(text)
    doc["entities"][entity]["fields"][name] = {
        "type": "string", "max_length": 40, "label": {"en": "Designer note", "zh": "设计备注"}}
    doc.yaml_set_comment_before_after_key("entities", before="added by the designer test")
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def first_entity() -> str:
    return state().spec.entities[0].name


def count(sql: str) -> int:
    with state().db.engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar() or 0)


def rebuilt(app):
    """A new app on the same database (what a restart or the hot reload builds)."""
    return create_app(app.extensions["schemadesk"].build_config)


SCENARIOS = [(CRM, b) for b in BACKENDS] + [(LIBRARY, "sqlite")]


@pytest.mark.parametrize(("schema", "backend"), SCENARIOS,
                         ids=[f"{s.stem}-{b}" for s, b in SCENARIOS])
def test_versions_apply_confirm_rollback_export(app_factory, schema, backend, tmp_path):
    app = app_factory(schema, backend)
    source_tree = ROOT / "migrations" / "versions"
    before_tree = tree_digest(source_tree)
    with app.app_context():
        v1 = current_version()
        assert v1.number == 1 and v1.yaml_text == schema.read_text(encoding="utf-8")
        entity = first_entity()
        table = state().models.model(entity).__table__.name

        new_text = with_field(v1.yaml_text, entity)
        change = plan_change(new_text)
        assert not change.errors
        assert [(s.text, s.destructive) for s in change.steps] == [
            (f"new column {table}.{NEW_FIELD}", False)]
        assert f"+      {NEW_FIELD}:" in change.diff and "added by the designer test" in change.diff

        v2 = apply_change(new_text, author="alice", comment="add a note field")
        assert (v2.number, v2.author, v2.comment) == (2, "alice", "add a note field")
        assert v2.revision and v2.backup_file and Path(v2.backup_file).is_file()
        revisions = list((Path(app.instance_path) / "migrations" / state().spec.stem).glob("*.py"))
        assert [p.name for p in revisions if v2.revision in p.name]
        assert tree_digest(source_tree) == before_tree  # the package's revisions never change
        assert count("SELECT COUNT(*) FROM audit_log WHERE action = 'schema_version'") == 1

    # a restart (or the hot reload) serves version 2 from the database, whatever the file says
    app2 = rebuilt(app)
    with app2.app_context():
        assert state().schema_number == 2 and state().schema_text == new_text
        assert state().spec.entity(entity).has_field(NEW_FIELD)
        assert plan() == []
        assert NEW_FIELD in state().models.model(entity).__table__.c
        # going back drops the column: it needs the field name typed
        back = plan_change(v1.yaml_text)
        assert [s.confirm for s in back.steps] == [NEW_FIELD] and back.steps[0].destructive
        assert "values will be lost" in back.steps[0].text
        with pytest.raises(ChangeRefused) as refused:
            reapply_version(v1.id, author="bob", comment="")
        assert NEW_FIELD in refused.value.message
        assert [v.number for v in list_versions()] == [2, 1]
        with pytest.raises(ChangeRefused):
            reapply_version(v1.id, author="bob", comment="", confirmations=["wrong"])
        v3 = reapply_version(v1.id, author="bob", comment="", confirmations=[NEW_FIELD])
        assert v3.number == 3 and v3.yaml_text == v1.yaml_text and "1" in (v3.comment or "")
        assert v3.digest == v1.digest
        assert compare_versions(v1.id, v2.id) == change.diff.replace("+++ new", "+++ v2")
        assert tree_digest(source_tree) == before_tree

    app3 = rebuilt(app)
    with app3.app_context():
        assert state().schema_number == 3
        assert NEW_FIELD not in state().models.model(entity).__table__.c
        assert plan() == []
        # export gives back the text as written, comments included
        out = tmp_path / "export.yaml"
        result = app3.test_cli_runner().invoke(schema_export, [str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_text(encoding="utf-8") == schema.read_text(encoding="utf-8")
        result = app3.test_cli_runner().invoke(schema_export, ["--version", "2"])
        assert result.output == new_text and "# added by the designer test" in result.output


@pytest.mark.parametrize("backend", BACKENDS)
def test_failing_migration_is_rolled_back_and_keeps_the_backup(app_factory, backend):
    """Making `remark` required fails (customers have none): nothing changes, backup kept."""
    app = app_factory(CRM, backend)
    with app.app_context():
        seed_crm(5)
        v1 = current_version()
        remark = "      remark:   {type: text, label: {en: Remark, zh: 备注}}\n"
        assert remark in v1.yaml_text
        required = v1.yaml_text.replace(remark, remark.replace("{type: text,",
                                                               "{type: text, required: true,"))
        change = plan_change(required)
        assert [s.confirm for s in change.steps if s.destructive] == ["remark"]
        with pytest.raises(ChangeRefused):
            apply_change(required, author="alice", comment="require remark")
        instance_revisions = Path(app.instance_path) / "migrations" / "crm"
        with pytest.raises(ChangeFailed) as failed:
            apply_change(required, author="alice", comment="require remark",
                         confirmations=["remark"])
        report = "\n".join(failed.value.report)
        assert "The migration failed" in report
        assert failed.value.backup and Path(failed.value.backup).is_file()
        assert failed.value.backup in report
        assert [v.number for v in list_versions()] == [1]
        assert list(instance_revisions.glob("*.py")) == []
        assert plan() == []
        assert count("SELECT COUNT(*) FROM customer") == 5


def test_schema_problems_are_refused_with_their_place(sqlite_crm_app):
    with sqlite_crm_app.app_context():
        text = current_version().yaml_text.replace("type: text,", "type: txet,", 1)
        with pytest.raises(ChangeRefused) as refused:
            apply_change(text, author="alice", comment="typo")
        problems = refused.value.plan.errors
        assert problems and all(p.code.startswith("SD-E") and p.line > 0 for p in problems)
        assert [v.number for v in list_versions()] == [1]
        with pytest.raises(ChangeRefused):  # the same text again: nothing to apply
            apply_change(current_version().yaml_text, author="alice", comment="")


def test_a_changed_file_is_ignored_with_a_warning(app_factory, tmp_path, caplog):
    """Once the database holds versions, the file only seeds: a start says how to import it."""
    schema = tmp_path / "library.yaml"
    schema.write_text(LIBRARY.read_text(encoding="utf-8"), encoding="utf-8")
    app = app_factory(schema, "sqlite")
    with app.app_context():
        v1 = current_version()
    schema.write_text(with_field(v1.yaml_text, "branch"), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="app.designer.versions"):
        again = create_app(app.extensions["schemadesk"].build_config)
    assert "schemadesk schema apply" in caplog.text
    with again.app_context():
        assert state().schema_number == 1 and NEW_FIELD not in state().schema_text
