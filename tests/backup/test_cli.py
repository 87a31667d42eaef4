"""`schemadesk backup ...` and the guarded `schema apply` tell the admin what happened."""

from __future__ import annotations

from pathlib import Path

from flask.cli import ScriptInfo

from app.backup.cli import backup_cli
from app.cli import schema_apply
from tests.backup.damage import truncate
from tests.backup.seed import seed_crm
from tests.backup.test_schema_apply import REMARK, schema_variant
from tests.conftest import CRM, build_app, new_database


def invoke(app, command, args):
    runner = app.test_cli_runner()
    return runner.invoke(command, args, obj=ScriptInfo(create_app=lambda: app))


def test_create_list_verify_and_refused_restore(app_factory, tmp_path):
    app = app_factory(CRM, "sqlite")
    with app.app_context():
        seed_crm(3)
    result = invoke(app, backup_cli, ["create", "--note", "nightly"])
    assert result.exit_code == 0, result.output
    assert "Backup written" in result.output and "Verified" in result.output
    listing = invoke(app, backup_cli, ["list"]).output
    assert "nightly" in listing and "verified" in listing
    name = listing.split()[0]
    assert "is intact" in invoke(app, backup_cli, ["verify", name]).output
    cut = truncate(Path(app.config["BACKUP_DIR"]) / name, tmp_path / "cut.sdbackup")
    result = invoke(app, backup_cli, ["verify", str(cut)])
    assert result.exit_code == 1 and "truncated" in result.output
    result = invoke(app, backup_cli, ["restore", name])
    assert result.exit_code == 1 and "--force" in result.output


def test_schema_apply_prints_plan_and_refuses_data_loss(tmp_path):
    url = new_database("sqlite", tmp_path)
    migrations = tmp_path / "migrations"
    build_app(schema_variant(tmp_path, "v1", REMARK), url, tmp_path / "i", migrations)
    from app import create_app

    app = create_app({"SCHEMA_PATH": str(schema_variant(tmp_path, "v2", "")), "TESTING": True,
                      "DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path / "i"),
                      "MIGRATIONS_DIR": str(migrations)})
    result = invoke(app, schema_apply, [])
    assert result.exit_code == 1
    assert "! drop column customer.remark and its data" in result.output
    assert "--allow-destructive" in result.output
    result = invoke(app, schema_apply, ["--allow-destructive", "-m", "drop remark"])
    assert result.exit_code == 0, result.output
    assert "Backup taken" in result.output and "Applied revision" in result.output
    assert "Roles synced" in result.output
