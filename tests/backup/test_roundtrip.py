"""A backup restores into an empty database of any engine with every row and checksum equal."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from app.backup.create import create_backup
from app.backup.format import BackupError
from app.backup.restore import restore_backup
from app.backup.verify import verify_backup
from app.privacy.keystore import export_keys, import_keys
from app.state import state
from tests.backup.seed import AUDIT_TABLES, audit_rows, data_checksums, seed_crm, table_checksums
from tests.conftest import CRM

FIELD_KEYS = ["x6s0m1aY8fXk1c0xjH1d2vQh3yW6bN8sT0pL4eR7uA0="]  # fixed: must travel with backups
PAIRS = [
    ("sqlite", "sqlite"),
    ("postgresql", "postgresql"),
    ("mariadb", "mariadb"),
    ("sqlite", "postgresql"),
    ("postgresql", "sqlite"),
]


def seeded_backup(app_factory, backend: str, tmp_path: Path, **config) -> tuple[Path, dict]:
    """A backup of a seeded app whose instance key is FIELD_KEYS (restores elsewhere need it)."""
    config.setdefault("FIELD_ENCRYPTION_KEYS", FIELD_KEYS)
    app = app_factory(CRM, backend, **config)
    with app.app_context():
        seed_crm()
        before = table_checksums()
        path = create_backup(tmp_path / "crm.sdbackup", note="test")
        export_keys(path.with_suffix(".keys.json"))  # subject keys travel apart from backups
    return path, before


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}-to-{t}" for s, t in PAIRS])
def test_restore_keeps_every_row_and_checksum(app_factory, empty_app, tmp_path, source, target):
    path, before = seeded_backup(app_factory, source, tmp_path)
    manifest = verify_backup(path, signing_keys=FIELD_KEYS).manifest
    assert {t["name"]: (t["rows"], t["sha256"]) for t in manifest["tables"]} == before
    assert {"ab_user", "ab_permission_view_role", "audit_log", "audit_head", "job_run",
            "customer_tags", "customer"} <= set(before)
    assert "alembic_version" not in before
    assert manifest["revision"] and manifest["engine"] == source
    assert before["customer"][0] == 20 and before["customer_tags"][0] > 0

    app = empty_app(target, FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with app.app_context():
        report = restore_backup(path)
        assert report.rows == manifest["total_rows"]
        assert report.warnings == []
        assert not report.keep_audit  # a fresh target takes the backup's audit log
        assert data_checksums() == {t: v for t, v in before.items() if t not in AUDIT_TABLES}
        from app.audit.service import run_verify

        chain = run_verify(record=False)  # the audit hash chain survives the move
        assert chain.ok and chain.count == before["audit_log"][0] + 1 > 1
        assert audit_rows()[-1][1] == "restore" and audit_rows()[-1][0] == report.audit_entry
        # sequences point past the restored ids: new rows get fresh ids
        customer = state().models.model("customer")
        session = state().db.session
        session.add(customer(name="after restore", kind="person"))
        session.commit()
        assert session.scalar(sa.select(sa.func.max(customer.id))) == 21
        restored = session.scalars(sa.select(customer).where(customer.id == 2)).one()
        assert restored.id_no != "ID-0001"  # sealed: its key is not in the backup (erased)
        result = import_keys(path.with_suffix(".keys.json"))  # the key store, kept apart
        assert result.added > 0
        session.commit()  # a fresh snapshot (MariaDB reads repeatably in a transaction)
        restored = session.scalars(sa.select(customer).where(customer.id == 2)).one()
        assert restored.id_no == "ID-0001"  # readable again with the same instance key


def test_restore_refuses_non_empty_target(app_factory, tmp_path):
    path, _ = seeded_backup(app_factory, "sqlite", tmp_path)
    other = app_factory(CRM, "sqlite", FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with other.app_context():
        rows_before = table_checksums()
        with pytest.raises(BackupError, match="not empty"):
            restore_backup(path)
        assert table_checksums() == rows_before


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_forced_restore_backs_up_the_target_first(app_factory, tmp_path, backend):
    path, before = seeded_backup(app_factory, backend, tmp_path)
    other = app_factory(CRM, backend, FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with other.app_context():
        previous = table_checksums()
        report = restore_backup(path, force=True)
        assert data_checksums() == {t: v for t, v in before.items() if t not in AUDIT_TABLES}
        safety = verify_backup(report.safety_backup)  # signed with this console's key
        assert safety.ok
        assert {t["name"]: (t["rows"], t["sha256"]) for t in safety.manifest["tables"]} == previous


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_failed_restore_leaves_target_as_it_was(app_factory, tmp_path, backend):
    """A backup whose rows break a unique constraint fails half-way; nothing is left changed."""
    from tests.backup.damage import rewrite_with_duplicate_phone

    path, _ = seeded_backup(app_factory, backend, tmp_path)
    broken = rewrite_with_duplicate_phone(path, tmp_path / "duplicate.sdbackup", FIELD_KEYS[0])
    # a well-formed file, signed by the key holder: only the database can refuse it
    assert verify_backup(broken, signing_keys=FIELD_KEYS).ok
    other = app_factory(CRM, backend, FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with other.app_context():
        previous = table_checksums()
        with pytest.raises(BackupError) as failure:
            restore_backup(broken, force=True)
        if backend == "mariadb":  # put back by restoring the safety backup, which is audited
            assert "put back" in str(failure.value)
            assert data_checksums() == {t: v for t, v in previous.items()
                                        if t not in AUDIT_TABLES}
        else:
            assert table_checksums() == previous


def test_encrypted_backup_needs_its_key(app_factory, empty_app, tmp_path):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    path, before = seeded_backup(app_factory, "sqlite", tmp_path, BACKUP_ENCRYPTION_KEY=key)
    raw = path.read_bytes()
    assert "客户".encode() not in raw and b"ab_permission_view" in raw  # names only in manifest
    assert not verify_backup(path, signing_keys=FIELD_KEYS).ok
    assert "BACKUP_ENCRYPTION_KEY" in verify_backup(path, signing_keys=FIELD_KEYS).problems[0]
    other_key = Fernet.generate_key().decode()
    assert "another key" in verify_backup(path, other_key, signing_keys=FIELD_KEYS).problems[0]
    assert verify_backup(path, key, signing_keys=FIELD_KEYS).ok
    app = empty_app("sqlite", BACKUP_ENCRYPTION_KEY=key, FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with app.app_context():
        restore_backup(path)
        assert data_checksums() == {t: v for t, v in before.items() if t not in AUDIT_TABLES}
