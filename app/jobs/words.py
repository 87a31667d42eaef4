"""The words a job run is shown in: its kind and its result counts.

A run stores its counts as a plain dict ({"total": 5, "created": 3}); the jobs
page shows them as "共 5 行，新增 3 行" instead of raw keys. A kind or count
this table does not know yet is shown by its key (a new job kind should add
its words here).
"""

from __future__ import annotations

from typing import Any

from app.i18n import N_, gettext

KIND_LABELS = {
    "import": N_("Import"),
    "export": N_("Export"),
    "backup": N_("Backup"),
    "backup_verify": N_("Backup check"),
    "backup_restore": N_("Restore"),
    "schema_apply": N_("Schema update"),
    "audit_verify": N_("Audit log check"),
    "retention": N_("Retention run"),
    "notify_mail": N_("E-mail sending"),
    "wait": N_("Test job"),
}

# count key -> a sentence part with the number in it
COUNT_WORDS = {
    "total": N_("%(n)s rows in total"),
    "created": N_("%(n)s created"),
    "updated": N_("%(n)s updated"),
    "unchanged": N_("%(n)s unchanged"),
    "rejected": N_("%(n)s rejected"),
    "rows": N_("%(n)s rows"),
    "tables": N_("%(n)s tables"),
    "bytes": N_("%(n)s bytes"),
    "changes": N_("%(n)s changes"),
    "changed": N_("%(n)s records changed"),
    "entries": N_("%(n)s entries"),
    "sent": N_("%(n)s sent"),
}
# Bookkeeping values that mean nothing to the reader.
HIDDEN_COUNTS = {"head_id"}


def kind_label(kind: str) -> str:
    """The job kind in the reader's language."""
    return gettext(KIND_LABELS[kind]) if kind in KIND_LABELS else kind


def count_phrases(counts: dict[str, Any]) -> list[str]:
    """Each result count as a short phrase ("新增 3 行"), in the run's order."""
    phrases = []
    for key, value in (counts or {}).items():
        if key in HIDDEN_COUNTS:
            continue
        if key in COUNT_WORDS:
            phrases.append(
                gettext(COUNT_WORDS[key], n=f"{value:,}" if isinstance(value, int) else value)
            )
        else:
            phrases.append(f"{key}: {value}")
    return phrases
