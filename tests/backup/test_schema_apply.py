"""`schema apply` plans in words, keeps every row, refuses data loss, and rolls back failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app
from app.backup.guard import guarded_apply
from app.backup.verify import verify_backup
from app.migrate import plan
from app.state import state
from tests.backup.seed import scalar, seed_crm, table_checksums
from tests.conftest import CRM, build_app, new_database

BACKENDS = ["sqlite", "postgresql", "mariadb"]
REMARK = "      remark:   {type: text, label: {en: Remark, zh: 备注}}\n"


def schema_variant(tmp_path: Path, name: str, replace: str) -> Path:
    """A copy of the CRM schema with the customer's `remark` line replaced."""
    text = CRM.read_text()
    assert REMARK in text
    folder = tmp_path / name
    folder.mkdir()
    path = folder / "crm.yaml"  # same stem: the same migrations folder applies
    path.write_text(text.replace(REMARK, replace))
    return path


@pytest.fixture
def v1(tmp_path: Path, request: pytest.FixtureRequest):
    """A seeded app on schema v1 with its own migrations folder; returns (config, checksums)."""
    backend = request.param
    url = new_database(backend, tmp_path)
    migrations = tmp_path / "migrations"
    app = build_app(schema_variant(tmp_path, "v1", REMARK), url, tmp_path / "instance", migrations)
    with app.app_context():
        seed_crm()
        before = table_checksums()
    config = {
        "DATABASE_URL": url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "MIGRATIONS_DIR": str(migrations),
        "TESTING": True,
    }
    return config, before


def app_on(schema: Path, config: dict) -> object:
    return create_app({**config, "SCHEMA_PATH": str(schema)})


@pytest.mark.parametrize("v1", BACKENDS, indirect=True)
def test_adding_a_field_keeps_every_row(v1, tmp_path):
    config, before = v1
    wechat = "      wechat:   {type: string, max_length: 50, label: {en: WeChat, zh: 微信}}\n"
    app = app_on(schema_variant(tmp_path, "v2", REMARK + wechat), config)
    with app.app_context():
        assert plan() == [("new column customer.wechat", False)]
        outcome = guarded_apply("add wechat")
        assert outcome.status == "applied", outcome.report
        assert outcome.revision and verify_backup(outcome.backup).ok
        assert plan() == []
        after = table_checksums()
        assert {t: n for t, (n, _) in after.items() if t != "audit_log"} == {
            t: n for t, (n, _) in before.items() if t != "audit_log"
        }
        assert scalar("SELECT COUNT(*) FROM customer WHERE wechat IS NULL") == 20
        assert scalar("SELECT COUNT(*) FROM follow_up") == 20
        state().db.session.add(state().models.model("customer")(name="n", wechat="wx-1"))
        state().db.session.commit()
        assert guarded_apply().status == "unchanged"


@pytest.mark.parametrize("v1", BACKENDS, indirect=True)
def test_removing_a_field_is_refused_without_the_flag(v1, tmp_path):
    config, before = v1
    app = app_on(schema_variant(tmp_path, "v3", ""), config)
    with app.app_context():
        outcome = guarded_apply("drop remark")
        assert outcome.status == "refused"
        assert outcome.changes == [("drop column customer.remark and its data", True)]
        assert "--allow-destructive" in outcome.report[0]
        assert outcome.backup is None
        assert table_checksums() == before
        assert list((Path(config["MIGRATIONS_DIR"])).glob("*drop_remark*")) == []

        outcome = guarded_apply("drop remark", allow_destructive=True)
        assert outcome.status == "applied", outcome.report
        assert plan() == []
        # children of the rebuilt table survive (SQLite rebuilds it with foreign keys off)
        assert scalar("SELECT COUNT(*) FROM follow_up") == 20
        assert scalar("SELECT COUNT(*) FROM customer_tags") == before["customer_tags"][0]
        kept = verify_backup(outcome.backup)
        customer = next(t for t in kept.manifest["tables"] if t["name"] == "customer")
        assert "remark" in [c for c, _ in customer["columns"]]


@pytest.mark.parametrize("v1", BACKENDS, indirect=True)
def test_failing_migration_rolls_back_and_keeps_the_backup(v1, tmp_path):
    """Making `remark` required fails: most customers have none. Nothing may change."""
    config, before = v1
    required = REMARK.replace("{type: text,", "{type: text, required: true,")
    app = app_on(schema_variant(tmp_path, "v4", required), config)
    with app.app_context():
        assert guarded_apply("require remark").status == "refused"
        outcome = guarded_apply("require remark", allow_destructive=True)
        assert outcome.status == "failed"
        text = "\n".join(outcome.report)
        assert "The migration failed" in text and outcome.backup in text
        assert ("rolled back" in text) or ("was restored" in text)
        assert verify_backup(outcome.backup).ok
        after = table_checksums()
        audit = ("audit_log", "audit_head")  # MariaDB's undo is a restore, which is audited
        assert {t: v for t, v in after.items() if t not in audit} == {
            t: v for t, v in before.items() if t not in audit
        }
        assert plan() == [("require a value in customer.remark", True)]
        assert list(Path(config["MIGRATIONS_DIR"]).glob("*require_remark*")) == []
