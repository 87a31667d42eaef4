"""Restoring a backup never rewinds the audit log; the restore itself is an entry of the chain."""

from __future__ import annotations

import pytest

from app.audit.cli import audit
from app.backup.cli import backup_cli
from app.backup.create import create_backup
from app.state import state
from tests.backup.seed import audit_rows, scalar, seed_crm
from tests.backup.test_cli import invoke
from tests.conftest import CRM


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_restoring_an_older_backup_keeps_the_later_audit_entries(app_factory, tmp_path, backend):
    app = app_factory(CRM, backend)
    with app.app_context():
        seed_crm(3)
        path = create_backup(tmp_path / "older.sdbackup")
        at_backup = audit_rows()
        seed_crm(2, prefix="later-")  # changes the backup does not hold
        before_restore = audit_rows()
        state().db.session.remove()
    assert len(before_restore) > len(at_backup)

    result = invoke(app, backup_cli, ["restore", "--force", str(path)])
    assert result.exit_code == 0, result.output
    assert "audit log was kept" in result.output

    with app.app_context():
        assert scalar("SELECT COUNT(*) FROM customer") == 3  # the data is the backup's
        after = audit_rows()
        assert after[: len(before_restore)] == before_restore  # nothing rewound, no id reused
        restore_entry = after[len(before_restore)]
        assert restore_entry[1] == "restore" and restore_entry == after[-1]
        assert restore_entry[0] == before_restore[-1][0] + 1
        assert scalar("SELECT last_id FROM audit_head WHERE id = 1") == restore_entry[0]
        assert "schemadesk_restore_audit" not in _tables()
    verified = invoke(app, audit, ["verify"])
    assert verified.exit_code == 0, verified.output
    assert "OK: the audit log is intact." in verified.output
    with app.app_context():  # new entries continue the chain after the restore entry
        seed_crm(1, prefix="after-")
        assert audit_rows()[-1][0] > restore_entry[0]
    assert invoke(app, audit, ["verify"]).exit_code == 0


def test_restore_into_a_fresh_database_takes_the_backups_log(app_factory, empty_app, tmp_path):
    app = app_factory(CRM, "sqlite")
    with app.app_context():
        seed_crm(2)
        path = create_backup(tmp_path / "move.sdbackup")
        source_log = audit_rows()
    target = empty_app("sqlite", FIELD_ENCRYPTION_KEYS=app.config["FIELD_ENCRYPTION_KEYS"])
    result = invoke(target, backup_cli, ["restore", str(path)])
    assert result.exit_code == 0, result.output
    with target.app_context():
        restored = audit_rows()
        assert restored[:-1] == source_log and restored[-1][1] == "restore"
    assert invoke(target, audit, ["verify"]).exit_code == 0


def _tables() -> list[str]:
    import sqlalchemy as sa

    return sa.inspect(state().db.engine).get_table_names()


def test_restore_ends_every_sign_in_session(app_factory, tmp_path):
    from tests.conftest import login

    app = app_factory(CRM, "sqlite")
    with app.app_context():
        path = create_backup(tmp_path / "sessions.sdbackup")
        state().db.session.remove()
    with app.test_client() as client:
        login(client)  # signed in after the backup was taken
        assert client.get("/customer/list/").status_code == 200
        result = invoke(app, backup_cli, ["restore", "--force", str(path)])
        assert result.exit_code == 0, result.output
        response = client.get("/customer/list/")
        assert response.status_code == 302 and "/login" in response.headers["Location"]
