"""The bulk paths (COPY on PostgreSQL, driver cursors, indexes rebuilt after the load) keep
every guarantee of the portable format: equal rows and checksums, across engines, with
damage and broken references still refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.backup.create import create_backup
from app.backup.format import BackupError
from app.backup.restore import restore_backup
from app.backup.verify import verify_backup
from app.state import state
from tests.backup.damage import flip_byte_in_table, rewrite_with_missing_parent
from tests.backup.seed import AUDIT_TABLES, data_checksums, seed_crm, table_checksums
from tests.backup.test_roundtrip import FIELD_KEYS, seeded_backup
from tests.conftest import CRM, LIBRARY

BACKENDS = ["sqlite", "postgresql", "mariadb"]


def index_names() -> set[tuple[str, str]]:
    """(table, index) of every index the app's database has, per SQLAlchemy's inspector."""
    with state().db.engine.connect() as conn:
        inspector = sa.inspect(conn)
        return {(t, i["name"]) for t in inspector.get_table_names()
                for i in inspector.get_indexes(t)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_engine_restore_keeps_rows_checksums_and_indexes(app_factory, empty_app, tmp_path,
                                                              backend):
    app = app_factory(CRM, backend, FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with app.app_context():
        seed_crm(60)
        before, indexes = table_checksums(), index_names()
        path = create_backup(tmp_path / "fast.sdbackup")
    manifest = verify_backup(path, signing_keys=FIELD_KEYS).manifest
    # the bulk reader writes exactly what SQLAlchemy reads, row for row
    assert {t["name"]: (t["rows"], t["sha256"]) for t in manifest["tables"]} == before
    assert indexes, "the CRM has secondary indexes to drop and rebuild"
    target = empty_app(backend, FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with target.app_context():
        report = restore_backup(path)
        assert data_checksums() == {t: v for t, v in before.items() if t not in AUDIT_TABLES}
        assert index_names() == indexes  # every index dropped for the load is back
        assert report.rows >= before["customer"][0]


@pytest.mark.parametrize(("source", "target"), [("postgresql", "sqlite"),
                                                ("sqlite", "postgresql")])
def test_generated_schema_crosses_engines(app_factory, empty_app, tmp_path, source, target):
    """The library example (other types, other tables) goes through the bulk paths both ways."""
    from app import create_app
    from tests.conftest import new_database

    app = app_factory(LIBRARY, source, FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with app.app_context():
        models = state().models
        for entity in state().spec.entities:  # one row per entity the schema lets us build
            table = models.table(entity.name)
            required = [c for c in table.c if not c.nullable and not c.primary_key
                        and c.server_default is None and c.default is None]
            if required:
                continue
            with state().db.engine.begin() as conn:
                conn.execute(sa.insert(table).values())
        before = table_checksums()
        path = create_backup(tmp_path / "library.sdbackup")
    other = create_app({"SCHEMA_PATH": str(LIBRARY), "DATABASE_URL": new_database(target, tmp_path),
                        "INSTANCE_PATH": str(tmp_path / "inst_t"), "TESTING": True,
                        "MIGRATIONS_DIR": app.config["MIGRATIONS_DIR"],  # the source's revisions
                        "FIELD_ENCRYPTION_KEYS": FIELD_KEYS})
    with other.app_context():
        restore_backup(path)
        assert data_checksums() == {t: v for t, v in before.items() if t not in AUDIT_TABLES}


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_flipped_byte_is_caught_while_loading(app_factory, empty_app, tmp_path, backend):
    """These engines read the data once, while loading: damage still fails and rolls back."""
    path, _ = seeded_backup(app_factory, backend, tmp_path)
    damaged = flip_byte_in_table(path, "customer", tmp_path / "flipped.sdbackup")
    target = empty_app(backend, FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with target.app_context():
        with pytest.raises(BackupError, match="altered"):
            restore_backup(damaged)
        assert table_checksums() == {}


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_reference_to_missing_row_is_refused_after_unchecked_load(app_factory, empty_app,
                                                                  tmp_path, backend):
    path, _ = seeded_backup(app_factory, backend, tmp_path)
    broken = rewrite_with_missing_parent(path, tmp_path / "orphan.sdbackup", FIELD_KEYS[0])
    assert verify_backup(broken, signing_keys=FIELD_KEYS).ok  # only the database can tell
    target = empty_app(backend, FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with target.app_context():
        with pytest.raises(BackupError, match="missing rows|foreign key|a foreign key"):
            restore_backup(broken)


def test_unsigned_file_is_still_refused_without_the_data_pass(app_factory, empty_app, tmp_path):
    path, _ = seeded_backup(app_factory, "postgresql", tmp_path)
    from tests.backup.damage import forge_extra_admin

    unsigned = forge_extra_admin(path, tmp_path / "unsigned.sdbackup", keep_signature=False)
    target = empty_app("postgresql", FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with target.app_context():
        with pytest.raises(BackupError, match="not signed"):
            restore_backup(unsigned)
        assert table_checksums() == {}
