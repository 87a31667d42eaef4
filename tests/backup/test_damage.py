"""A flipped byte or a cut-off file is named by verify and refused by restore."""

from __future__ import annotations

import pytest

from app.backup.create import create_backup
from app.backup.format import BackupError
from app.backup.restore import restore_backup
from app.backup.verify import verify_backup
from tests.backup.damage import flip_byte_in_table, truncate
from tests.backup.seed import seed_crm, table_checksums
from tests.backup.test_roundtrip import FIELD_KEYS
from tests.conftest import CRM


@pytest.fixture(scope="module")
def good_backup(app_factory, tmp_path_factory):
    """A backup signed with FIELD_KEYS: the damage below is all that is wrong with it."""
    app = app_factory(CRM, "sqlite", FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with app.app_context():
        seed_crm(200)
        return create_backup(tmp_path_factory.mktemp("good") / "good.sdbackup")


def test_intact_backup_verifies(good_backup):
    result = verify_backup(good_backup, signing_keys=FIELD_KEYS)
    assert result.ok, result.problems
    assert result.manifest["total_rows"] > 400


def test_flipped_byte_is_named_as_altered(good_backup, tmp_path):
    damaged = flip_byte_in_table(good_backup, "customer", tmp_path / "flipped.sdbackup")
    result = verify_backup(damaged, signing_keys=FIELD_KEYS)
    assert not result.ok
    assert len(result.problems) == 1
    assert "altered" in result.problems[0] and "customer" in result.problems[0]


def test_truncated_file_is_named_as_truncated(good_backup, tmp_path):
    damaged = truncate(good_backup, tmp_path / "cut.sdbackup")
    result = verify_backup(damaged, signing_keys=FIELD_KEYS)
    assert not result.ok
    assert "truncated" in result.problems[0]


def test_other_file_is_not_a_backup(tmp_path):
    other = tmp_path / "notes.sdbackup"
    other.write_text("hello")
    assert "not a SchemaDesk backup" in verify_backup(other).problems[0]


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_restore_refuses_damaged_file_before_touching_target(good_backup, tmp_path, empty_app,
                                                            damage):
    if damage == "flipped":
        damaged = flip_byte_in_table(good_backup, "follow_up", tmp_path / "d.sdbackup")
    else:
        damaged = truncate(good_backup, tmp_path / "d.sdbackup", keep=0.9)
    app = empty_app("sqlite", FIELD_ENCRYPTION_KEYS=FIELD_KEYS)
    with app.app_context():
        with pytest.raises(BackupError, match="altered|truncated"):
            restore_backup(damaged)
        assert table_checksums() == {}  # not a single table was created
