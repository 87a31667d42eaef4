"""The privacy tables: subject keys, erasure tombstones, retention runs and their reports."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)


def define_privacy_tables(metadata: MetaData) -> dict[str, Table]:
    """Add the privacy tables to `metadata`; return them by name.

    `subject_key` holds one random data key per data subject record, wrapped by
    the instance key (FIELD_ENCRYPTION_KEYS); deleting its row is the erasure
    (加密粉碎). `subject_erasure` remembers what was erased, so a restore of an
    older backup does not bring it back (a restore keeps it, like the audit log).
    """
    subject_key = Table(
        "subject_key", metadata,
        Column("id", String(32), primary_key=True),
        Column("entity", String(64), nullable=False),
        Column("record_id", String(64)),
        Column("wrapped", Text, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Index("ix_subject_key_entity_record", "entity", "record_id"),
    )
    subject_erasure = Table(
        "subject_erasure", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("entity", String(64), nullable=False),
        Column("record_id", String(64), nullable=False),
        Column("mode", String(16), nullable=False),
        Column("erased_at", DateTime, nullable=False),
        Column("actor_name", String(255)),
        Column("rule", String(64)),
        Index("ix_subject_erasure_entity_record", "entity", "record_id"),
    )
    retention_run = Table(
        "retention_run", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("entity", String(64), nullable=False),
        Column("slot", String(32), nullable=False),
        Column("action", String(16), nullable=False),
        Column("rule", Text),
        Column("status", String(16), nullable=False),
        Column("changed", Integer, nullable=False, server_default="0"),
        Column("started_at", DateTime, nullable=False),
        Column("finished_at", DateTime),
        Column("audit_hash", String(64)),
        Column("error", Text),
        # One run per rule and slot: a second scheduler process fails to insert it.
        UniqueConstraint("entity", "slot", name="uq_retention_run_entity_slot"),
    )
    retention_item = Table(
        "retention_item", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", Integer, nullable=False, index=True),
        Column("entity", String(64), nullable=False),
        Column("record_id", String(64), nullable=False),
        Column("action", String(16), nullable=False),
        Column("new_title", String(255)),
        Column("audit_hash", String(64)),
    )
    return {"subject_key": subject_key, "subject_erasure": subject_erasure,
            "retention_run": retention_run, "retention_item": retention_item}
