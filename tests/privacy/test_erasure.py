"""Erasure reaches every copy: table, audit log, server-side exports, earlier backups.

On SQLite, PostgreSQL and MariaDB: a customer (a data subject) with a sealed
ID number and a contact is written, updated, exported and backed up; then it is
erased with `schemadesk erase`. After that no plaintext of its sealed values is
in the database (SQLite: the raw bytes of the file and WAL after a checkpoint;
PostgreSQL/MariaDB: every text column of every table), in the audit log, in
the exports or in the earlier backup's raw bytes (the phone, searched and
unique, included: it is sealed too and found through its blind index);
`audit verify` passes; and a restore of the earlier backup shows the record
erased again.
"""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.backup.create import create_backup
from app.backup.restore import restore_backup
from app.privacy.cli import erase_command
from app.records import records
from app.state import state
from tests.conftest import CRM

BACKENDS = ["sqlite", "postgresql", "mariadb"]


def secret(prefix: str) -> str:
    return f"{prefix}{random.randrange(10**9, 10**10)}"


def database_text(app) -> bytes:
    """Everything the database holds, as raw bytes (SQLite) or every text value (others)."""
    st = state()
    engine = st.db.engine
    if engine.dialect.name == "sqlite":
        st.db.session.remove()
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        path = Path(engine.url.database)
        data = path.read_bytes()
        wal = path.with_name(path.name + "-wal")
        return data + (wal.read_bytes() if wal.exists() else b"")
    chunks = []
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for name in inspector.get_table_names():
            columns = [c["name"] for c in inspector.get_columns(name)
                       if isinstance(c["type"], sa.String | sa.Text)]
            if not columns:
                continue
            table = sa.table(name, *(sa.column(c) for c in columns))
            for row in conn.execute(sa.select(*table.c)):
                chunks.append(" ".join(str(v) for v in row if v is not None))
    return "\n".join(chunks).encode("utf-8")


def backup_bytes(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return b"".join(zf.read(n) for n in zf.namelist())


def make_customer(id_no: str, phone: str, contact_phone: str) -> tuple[int, int]:
    customers, contacts = records("customer", None), records("contact", None)
    customer = customers.create({"name": "王小明", "kind": "person", "phone": phone,
                                 "id_no": "OLD" + id_no})
    customers.update(customer, {"id_no": id_no})  # a sealed before/after in the audit log
    contact = contacts.create({"customer": customer.id, "name": "王联系", "phone": contact_phone})
    return customer.id, contact.id


@pytest.mark.parametrize("backend", BACKENDS)
def test_erased_customer_leaves_no_plaintext_anywhere(app_factory, tmp_path, backend):
    from app.audit.service import run_verify
    from app.io.exporter import write_export
    from app.io.jobs import export_dir

    app = app_factory(CRM, backend)
    id_no, phone, contact_phone = secret("IDX"), secret("139"), secret("137")
    with app.app_context():
        customer_id, contact_id = make_customer(id_no, phone, contact_phone)
        stored = database_text(app)
        for value in (id_no, phone, contact_phone):  # sealed under the record's key
            assert value.encode() not in stored, value
        export = export_dir() / "customer-20261124-000000-1.csv"
        write_export("customer", export, "csv")
        assert id_no in export.read_text("utf-8-sig")
        earlier = create_backup(tmp_path / "before.sdbackup", keys=[])
        for value in (id_no, phone, contact_phone):
            assert value.encode() not in backup_bytes(earlier), value

        result = app.test_cli_runner().invoke(erase_command, ["customer", str(customer_id),
                                                              "--yes"])
        assert result.exit_code == 0, result.output

        state().db.session.remove()
        text = database_text(app)
        for value in (id_no, "OLD" + id_no, phone, contact_phone):
            assert value.encode() not in text, value
        assert not export.exists()  # server-side exports of the entity are removed
        for value in (id_no, phone, contact_phone):
            assert value.encode() not in backup_bytes(earlier), value
        customer = records("customer", None).get(customer_id)
        assert customer.name == f"已销毁 #{customer_id}" and customer.id_no is None
        contact = records("contact", None).get(contact_id)
        assert contact.phone is None and contact.name == f"已销毁 #{contact_id}"
        keys = state().models.system["subject_key"]
        with state().db.engine.connect() as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(keys).where(
                keys.c.record_id == str(customer_id), keys.c.entity == "customer")).scalar()
        assert left == 0
        log = state().models.system["audit_log"]
        with state().db.engine.connect() as conn:
            erase_entries = conn.execute(sa.select(log.c.entity, log.c.record_id,
                                                   log.c.record_title, log.c.actor_name)
                                         .where(log.c.action == "erase")).all()
        assert ("customer", str(customer_id), None) in [e[:3] for e in erase_entries]
        assert ("contact", str(contact_id), None) in [e[:3] for e in erase_entries]
        assert run_verify(record=False).ok

        report = restore_backup(earlier, force=True)
        assert report.keep_audit
        state().db.session.remove()
        restored = records("customer", None).get(customer_id)
        assert restored.name == f"已销毁 #{customer_id}" and restored.id_no is None
        assert restored.phone is None
        assert records("contact", None).get(contact_id).phone is None
        restored_text = database_text(app)
        for value in (id_no, phone, contact_phone):
            assert value.encode() not in restored_text, value
        assert run_verify(record=False).ok


def test_sealed_value_of_a_restored_old_row_reads_as_erased(app_factory, tmp_path):
    """A token whose key was destroyed reads as "erased", never as ciphertext or an error."""
    from app.privacy.keys import result_value

    app = app_factory(CRM, "sqlite")
    with app.app_context():
        customer_id, _ = make_customer(secret("IDY"), secret("139"), secret("137"))
        table = state().models.table("customer")
        raw = sa.table("customer", sa.column("id"), sa.column("id_no"))
        with state().db.engine.connect() as conn:
            token = conn.execute(sa.select(raw.c.id_no).where(raw.c.id == customer_id)).scalar()
        assert token.startswith("sk1:") and table is not None
        records("customer", None).erase(records("customer", None).get(customer_id))
        from app.privacy.keys import forget, key_id_of

        forget([key_id_of(token)])
        assert result_value(token) == "erased"
