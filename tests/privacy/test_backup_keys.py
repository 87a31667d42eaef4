"""Subject keys never go into backups, so an erasure reaches the backups taken before it.

On SQLite, PostgreSQL and MariaDB: (a) a backup holds no `subject_key` row —
neither the wrapped key of a customer nor its id outside the sealed tokens;
(b) restoring an earlier backup on the same instance keeps the live keys: the
customer erased since reads as erased, another one reads normally, the audit
chain verifies; (c) disaster recovery: `keys export`, a fresh instance with the
same instance key, restore + `keys import`: the live customers read, the key
of the erased one is skipped (its tombstone is in the backup).
"""

from __future__ import annotations

import random
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from app.backup.create import create_backup
from app.backup.restore import restore_backup
from app.privacy import keys as subject_keys
from app.privacy.cli import erase_command
from app.records import records
from app.security.cli import keys as keys_cli
from app.state import state
from tests.conftest import CRM

BACKENDS = ["sqlite", "postgresql", "mariadb"]
INSTANCE_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="module")
def desk(app_factory) -> Any:
    """`desk(backend)`: one app per backend for this module, all with INSTANCE_KEY."""
    built: dict[str, Any] = {}

    def get(backend: str) -> Any:
        if backend not in built:
            built[backend] = app_factory(CRM, backend, FIELD_ENCRYPTION_KEYS=[INSTANCE_KEY])
        return built[backend]

    return get


def secret(prefix: str) -> str:
    return f"{prefix}{random.randrange(10**9, 10**10)}"


def backup_bytes(path: Path) -> bytes:
    """The raw file and every member uncompressed (a deflated member hides nothing then)."""
    with zipfile.ZipFile(path) as zf:
        return path.read_bytes() + b"".join(zf.read(n) for n in zf.namelist())


def make_customer(name: str) -> tuple[int, str, str]:
    """A customer with a sealed ID number and a phone; return (id, id number, phone)."""
    id_no, phone = secret("IDK"), secret("138")
    customer = records("customer", None).create(
        {"name": name, "kind": "person", "phone": phone, "id_no": id_no})
    return customer.id, id_no, phone


def key_rows(entity: str = "customer", record_id: Any = None) -> list[tuple[str, str]]:
    """(id, wrapped) of the live keys, of one record when `record_id` is given."""
    table = state().models.system["subject_key"]
    query = sa.select(table.c.id, table.c.wrapped).where(table.c.entity == entity)
    if record_id is not None:
        query = query.where(table.c.record_id == str(record_id))
    with state().db.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(query))


def all_keys() -> list[tuple[str, str]]:
    table = state().models.system["subject_key"]
    with state().db.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(table.c.id, table.c.wrapped)))


def raw_id_no(customer_id: int) -> str | None:
    raw = sa.table("customer", sa.column("id"), sa.column("id_no"))
    with state().db.engine.connect() as conn:
        return conn.execute(sa.select(raw.c.id_no).where(raw.c.id == customer_id)).scalar()


def read_id_no(customer_id: int) -> Any:
    state().db.session.remove()
    return records("customer", None).get(customer_id).id_no


def erase(app: Any, customer_id: int) -> None:
    result = app.test_cli_runner().invoke(erase_command, ["customer", str(customer_id), "--yes"])
    assert result.exit_code == 0, result.output


def assert_no_key_in(data: bytes, keys: list[tuple[str, str]]) -> None:
    """Neither the wrapped key nor its id outside a sealed token (`sk1:<id>:`) is in `data`."""
    assert keys
    for key_id, wrapped in keys:
        assert wrapped.encode() not in data, key_id
        assert len(re.findall(key_id.encode(), data)) == \
            len(re.findall(b"sk1:" + key_id.encode() + b":", data)), key_id


def audit_ok() -> bool:
    from app.audit.service import run_verify

    return run_verify(record=False).ok


@pytest.mark.parametrize("backend", BACKENDS)
def test_backup_holds_no_key_and_restore_keeps_live_keys(desk, tmp_path, backend):
    app = desk(backend)
    with app.app_context():
        kept_id, kept_id_no, _ = make_customer("留下的客户")
        gone_id, _, _ = make_customer("要销毁的客户")
        gone_keys, kept_keys = key_rows(record_id=gone_id), key_rows(record_id=kept_id)
        token = raw_id_no(gone_id)
        assert subject_keys.key_id_of(token) in {k for k, _ in gone_keys}

        earlier = create_backup(tmp_path / "earlier.sdbackup", keys=[])
        with zipfile.ZipFile(earlier) as zf:
            assert not [n for n in zf.namelist() if "subject_key" in n]
        erase(app, gone_id)

        # (a) the earlier backup never held the erased customer's key (nor the other's)
        data = backup_bytes(earlier)
        assert token.encode() in data  # the sealed value is there, as ciphertext
        assert_no_key_in(data, gone_keys + kept_keys)
        assert key_rows(record_id=gone_id) == []
        live = all_keys()

        # (b) restore the earlier backup on the same instance
        report = restore_backup(earlier, force=True, safety_backup=False)
        assert report.keep_audit and report.subject_keys == len(live)
        assert all_keys() == live  # the live key store, untouched
        assert key_rows(record_id=gone_id) == []
        subject_keys.forget([k for k, _ in gone_keys + kept_keys])
        assert subject_keys.unseal(token) is None  # the backup's sealed value: unreadable
        gone = records("customer", None).get(gone_id)
        assert gone.name == f"已销毁 #{gone_id}" and gone.id_no is None and gone.phone is None
        assert read_id_no(kept_id) == kept_id_no
        assert audit_ok()


@pytest.mark.parametrize("backend", BACKENDS)
def test_disaster_recovery_with_a_key_export(desk, app_factory, tmp_path, backend):
    first = desk(backend)
    export = tmp_path / "keys.json"
    with first.app_context():
        kept_id, kept_id_no, kept_phone = make_customer("留下的客户")
        gone_id, _, _ = make_customer("要销毁的客户")
        gone_keys = key_rows(record_id=gone_id)
        result = first.test_cli_runner().invoke(keys_cli, ["export", str(export)])
        assert result.exit_code == 0, result.output
        exported = export.read_text("utf-8")
        for key_id, wrapped in gone_keys + key_rows(record_id=kept_id):
            assert key_id in exported and wrapped in exported  # as stored: wrapped
        erase(first, gone_id)  # after the export: the file still holds its key
        backup = create_backup(tmp_path / "dr.sdbackup", keys=[])
        assert_no_key_in(backup_bytes(backup), gone_keys)

    subject_keys.forget([k for k, _ in all_keys_of(first)] + [k for k, _ in gone_keys])
    fresh = app_factory(CRM, backend, FIELD_ENCRYPTION_KEYS=[INSTANCE_KEY])
    with fresh.app_context():
        restore_backup(backup, force=True, safety_backup=False)  # a fresh machine
        assert all_keys() == []
        assert read_id_no(kept_id) == subject_keys.erased_text()  # no key yet
        result = fresh.test_cli_runner().invoke(keys_cli, ["import", str(export)])
        assert result.exit_code == 0, result.output
        assert "1 skipped" in result.output or "跳过" in result.output, result.output
        assert key_rows(record_id=gone_id) == []
        assert not {k for k, _ in all_keys()} & {k for k, _ in gone_keys}
        state().db.session.remove()  # a fresh snapshot (MariaDB reads repeatably)
        customer = records("customer", None).get(kept_id)
        assert customer.id_no == kept_id_no and customer.phone == kept_phone
        gone = records("customer", None).get(gone_id)
        assert gone.name == f"已销毁 #{gone_id}" and gone.id_no is None
        again = fresh.test_cli_runner().invoke(keys_cli, ["import", str(export)])
        assert again.exit_code == 0, again.output
        assert audit_ok()


def all_keys_of(app: Any) -> list[tuple[str, str]]:
    with app.app_context():
        return all_keys()


def test_keys_import_refuses_a_file_that_is_not_an_export(desk, tmp_path):
    app = desk("sqlite")
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"keys": []}')
    result = app.test_cli_runner().invoke(keys_cli, ["import", str(bogus)])
    assert result.exit_code != 0
    assert "keys export" in result.output


def test_native_snapshot_holds_no_key(desk, tmp_path):
    from app.backup.native import sqlite_snapshot

    app = desk("sqlite")
    with app.app_context():
        customer_id, id_no, _ = make_customer("快照客户")
        keys = key_rows(record_id=customer_id)
        snapshot = sqlite_snapshot(tmp_path / "snap.db")
        data = snapshot.read_bytes()
        assert_no_key_in(data, keys)
        assert not Path(str(snapshot) + "-wal").exists()
        with sa.create_engine(f"sqlite:///{snapshot}").connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM subject_key").scalar() == 0
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM customer").scalar() >= 1
        assert read_id_no(customer_id) == id_no  # the live database keeps its keys


def test_an_older_backup_with_keys_brings_no_erased_key_back(desk, tmp_path, monkeypatch):
    """A file taken before keys were left out still holds them: the tombstones win."""
    from app.backup import engine

    app = desk("sqlite")
    with app.app_context():
        kept_id, kept_id_no, _ = make_customer("留下的客户")
        gone_id, _, _ = make_customer("要销毁的客户")
        gone_keys = key_rows(record_id=gone_id)
        with monkeypatch.context() as patch:
            patch.setattr(engine, "SKIPPED_TABLES", ("alembic_version", "user_session"))
            legacy = create_backup(tmp_path / "legacy.sdbackup", keys=[])
        assert gone_keys[0][1].encode() in backup_bytes(legacy)
        erase(app, gone_id)
        live = all_keys()
        report = restore_backup(legacy, force=True, safety_backup=False)
        assert any("subject key" in w or "密钥" in w for w in report.warnings), report.warnings
        assert all_keys() == live and key_rows(record_id=gone_id) == []
        assert read_id_no(kept_id) == kept_id_no
        assert audit_ok()
