"""A backup is signed with the instance's key: a consistently rewritten one is refused."""

from __future__ import annotations

import zipfile

import pytest
import sqlalchemy as sa
from flask.cli import ScriptInfo

from app.backup.cli import backup_cli
from app.backup.create import create_backup
from app.backup.format import SIGNATURE, BackupError
from app.backup.restore import restore_backup
from app.backup.verify import verify_backup
from tests.backup.damage import forge_extra_admin
from tests.backup.seed import scalar, seed_crm, table_checksums
from tests.backup.test_cli import invoke
from tests.backup.test_roundtrip import FIELD_KEYS
from tests.conftest import CRM


@pytest.fixture(scope="module")
def signed(app_factory, tmp_path_factory):
    app = app_factory(CRM, "sqlite", FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with app.app_context():
        seed_crm(3)
        path = create_backup(tmp_path_factory.mktemp("signed") / "signed.sdbackup")
    return app, path


def test_backup_is_signed_and_verifies_with_the_instance_key(signed):
    app, path = signed
    with zipfile.ZipFile(path) as zf:
        assert SIGNATURE in zf.namelist()
    with app.app_context():
        result = verify_backup(path)
    assert result.ok and result.signed
    assert not verify_backup(path).ok  # no app, no key: nothing can vouch for it


def test_forged_admin_with_recomputed_checksums_is_refused(signed, tmp_path, empty_app):
    app, path = signed
    forged = forge_extra_admin(path, tmp_path / "forged.sdbackup")
    with app.app_context():
        result = verify_backup(forged)
    # every count and SHA-256 agree with the rewritten manifest: only the signature fails
    assert result.problems == [result.problems[0]] and "forged or altered" in result.problems[0]
    assert result.manifest["total_rows"] == verify_backup(
        path, signing_keys=FIELD_KEYS).manifest["total_rows"] + 2

    checked = invoke(app, backup_cli, ["verify", str(forged)])
    assert checked.exit_code == 1 and "forged or altered" in checked.output
    with app.app_context():
        before = table_checksums()
    refused = invoke(app, backup_cli, ["restore", "--force", str(forged)])
    assert refused.exit_code == 1 and "forged or altered" in refused.output
    with app.app_context():
        assert table_checksums() == before
        assert scalar("SELECT COUNT(*) FROM ab_user WHERE username = 'mallory'") == 0

    fresh = empty_app("sqlite", FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with fresh.app_context():
        with pytest.raises(BackupError, match="forged or altered"):
            restore_backup(forged)
        assert sa.inspect(sa.create_engine(fresh.config["SQLALCHEMY_DATABASE_URI"])) \
            .get_table_names() == []


def test_unsigned_backup_is_refused_unless_allowed(signed, tmp_path, empty_app):
    app, path = signed
    unsigned = forge_extra_admin(path, tmp_path / "unsigned.sdbackup", keep_signature=False)
    refused = invoke(app, backup_cli, ["verify", str(unsigned)])
    assert refused.exit_code == 1
    assert "not signed" in refused.output and "--allow-unsigned" in refused.output
    allowed = invoke(app, backup_cli, ["verify", "--allow-unsigned", str(unsigned)])
    assert allowed.exit_code == 0 and "is not signed" in allowed.output

    fresh = empty_app("sqlite", FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    assert invoke(fresh, backup_cli, ["restore", str(unsigned)]).exit_code == 1
    restored = invoke(fresh, backup_cli, ["restore", "--allow-unsigned", str(unsigned)])
    assert restored.exit_code == 0, restored.output
    assert "--allow-unsigned was given" in restored.output


def test_backup_of_another_instance_restores_with_its_key(signed, empty_app):
    _app, path = signed
    target = empty_app("sqlite")  # a console with a key of its own
    refused = invoke(target, backup_cli, ["restore", str(path)])
    assert refused.exit_code == 1
    assert "does not hold" in refused.output and "--key" in refused.output

    runner = target.test_cli_runner()
    restored = runner.invoke(backup_cli, ["restore", str(path)],
                             obj=ScriptInfo(create_app=lambda: target),
                             env={"SCHEMADESK_BACKUP_KEY": FIELD_KEYS[0]})
    assert restored.exit_code == 0, restored.output
    with target.app_context():
        assert scalar("SELECT COUNT(*) FROM customer") == 3


def test_key_given_on_the_command_line_verifies(signed, empty_app):
    _app, path = signed
    target = empty_app("sqlite")
    other = "k" * 44
    result = invoke(target, backup_cli, ["verify", "--key", f"{other},{FIELD_KEYS[0]}",
                                         str(path)])
    assert result.exit_code == 0, result.output
