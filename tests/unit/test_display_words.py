"""Machine-made values shown as words: job results, job kinds, backup notes."""

from __future__ import annotations

from app.backup.notes import note_text
from app.jobs.words import COUNT_WORDS, count_phrases, kind_label


def test_job_counts_read_as_a_sentence_not_keys() -> None:
    phrases = count_phrases({"total": 5, "created": 3, "updated": 1, "rejected": 1})
    assert phrases == ["5 rows in total", "3 created", "1 updated", "1 rejected"]
    assert not any(":" in p for p in phrases)


def test_every_count_an_import_or_backup_reports_has_words() -> None:
    for key in (
        "total",
        "created",
        "updated",
        "unchanged",
        "rejected",  # import
        "rows",
        "tables",
        "bytes",
        "changes",
        "entries",
        "sent",
        "changed",
    ):
        assert key in COUNT_WORDS


def test_bookkeeping_counts_are_hidden_and_unknown_ones_kept() -> None:
    assert count_phrases({"entries": 1200, "head_id": 77}) == ["1,200 entries"]
    assert count_phrases({"mystery": 2}) == ["mystery: 2"]


def test_job_kinds_have_names() -> None:
    assert kind_label("import") == "Import"
    assert kind_label("backup_restore") == "Restore"
    assert kind_label("new_kind") == "new_kind"


def test_backup_notes_written_by_the_console_are_translated() -> None:
    assert note_text("scheduled") == "Scheduled backup"
    assert note_text("before restore of sd-2026.tar") == "Taken before restoring sd-2026.tar"
    assert note_text("before schema apply: 2 changes") == (
        "Taken before a schema update: 2 changes"
    )
    assert note_text("月末备份") == "月末备份"
    assert note_text(None) == ""
