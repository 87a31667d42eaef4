"""The console's own tables: the audit log (with its chain head), job runs, sessions."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from app.privacy.tables import define_privacy_tables


def define_system_tables(metadata: MetaData) -> dict[str, Table]:
    """Add the audit and job tables to `metadata`; return them by name."""
    audit_log = Table(
        "audit_log",
        metadata,
        Column(
            "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        Column("created_at", DateTime, nullable=False, index=True),
        Column("actor_id", Integer, index=True),
        Column("actor_name", String(255)),
        Column("source", String(16), nullable=False, index=True),
        Column("client_ip", String(64)),
        Column("request_id", String(64)),
        Column("action", String(32), nullable=False, index=True),
        Column("entity", String(64), index=True),
        Column("record_id", String(64)),
        Column("record_title", String(255)),
        Column("changes", Text),
        Column("detail", Text),
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False, unique=True),
    )
    # One row (id=1) locked FOR UPDATE by every writer: it serialises appends so
    # the chain stays linear with many processes, and holds the current head.
    audit_head = Table(
        "audit_head",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("last_id", BigInteger().with_variant(Integer, "sqlite")),
        Column("last_hash", String(64), nullable=False),
    )
    job_run = Table(
        "job_run",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("kind", String(32), nullable=False, index=True),
        Column("queue", String(32), nullable=False),
        Column("params", Text),
        Column("user_id", Integer, index=True),
        Column("user_name", String(255)),
        Column("status", String(16), nullable=False, index=True),
        Column("progress", Integer, nullable=False, default=0),
        Column("total", Integer),
        Column("processed", Integer, nullable=False, default=0),
        Column("counts", Text),
        Column("message", Text),
        Column("error", Text),
        Column("result_file", String(1024)),
        Column("error_file", String(1024)),
        Column("rq_job_id", String(64), index=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("worker", String(255)),
        Column("created_at", DateTime, nullable=False, index=True),
        Column("started_at", DateTime),
        Column("finished_at", DateTime),
        Column("heartbeat_at", DateTime),
    )
    return {
        "audit_log": audit_log,
        "audit_head": audit_head,
        "job_run": job_run,
        "user_session": define_session_table(metadata),
        "user_mfa": define_mfa_table(metadata),
        "saved_view": define_saved_view_table(metadata),
        **define_notify_tables(metadata),
        **define_approval_tables(metadata),
        **define_privacy_tables(metadata),
        "schema_version": define_schema_version_table(metadata),
    }


def define_schema_version_table(metadata: MetaData) -> Table:
    """Add `schema_version` (the schema's applied versions, 架构版本; app/designer/versions.py).

    The newest row IS the schema every process serves: `yaml_text` is kept as
    written (comments and all), so export and diff give back the admin's text.
    LONGTEXT on MariaDB: a schema outgrows TEXT's 64 KB.
    """
    from sqlalchemy.dialects.mysql import LONGTEXT

    long_text = Text().with_variant(LONGTEXT(), "mysql").with_variant(LONGTEXT(), "mariadb")
    return Table(
        "schema_version",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("number", Integer, nullable=False, unique=True),
        Column("yaml_text", long_text, nullable=False),
        Column("digest", String(64), nullable=False),
        Column("author", String(255)),
        Column("created_at", DateTime, nullable=False),
        Column("comment", Text),
        Column("revision", String(64)),
        Column("backup_file", String(1024)),
    )


def define_session_table(metadata: MetaData) -> Table:
    """Add `user_session` (one row per signed-in browser session, 在线会话) to `metadata`.

    The Flask session carries only `sid`; a row that is missing or revoked
    (logout, password change) signs the browser out (app/security/sessions.py).
    """
    return Table(
        "user_session",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("sid", String(64), nullable=False, unique=True),
        Column("user_id", Integer, nullable=False, index=True),
        Column("created_at", DateTime, nullable=False),
        Column("last_seen_at", DateTime, nullable=False),
        Column("ip", String(64)),
        Column("user_agent", String(255)),
        Column("revoked_at", DateTime),
    )


def define_notify_tables(metadata: MetaData) -> dict[str, Table]:
    """Add the tables of notifications (通知), reminders and webhooks (app/notify).

    `notification_key` holds one row per dedupe key: inserting it with "on
    conflict do nothing" is what makes a reminder fire once even when two
    schedulers race. `user_pref` remembers each account's language so e-mails
    go out in the recipient's language.
    """
    big_id = BigInteger().with_variant(Integer, "sqlite")
    return {
        "notification": Table(
            "notification",
            metadata,
            Column("id", big_id, primary_key=True, autoincrement=True),
            Column("user_id", Integer, nullable=False),
            Column("message", Text, nullable=False),
            Column("params", Text),
            Column("entity", String(64)),
            Column("record_id", BigInteger),
            Column("dedupe_key", String(255), index=True),
            Column("created_at", DateTime, nullable=False),
            Column("read_at", DateTime),
            Column("emailed_at", DateTime),
            Index("ix_notification_user_id_read_at", "user_id", "read_at"),
        ),
        "notification_key": Table(
            "notification_key",
            metadata,
            Column("key", String(255), primary_key=True),
            Column("created_at", DateTime, nullable=False),
        ),
        "user_pref": Table(
            "user_pref",
            metadata,
            Column("user_id", Integer, primary_key=True, autoincrement=False),
            Column("lang", String(8)),
            Column("updated_at", DateTime, nullable=False),
        ),
        "reminder_run": Table(
            "reminder_run",
            metadata,
            Column("rule", String(128), primary_key=True),
            Column("last_run_at", DateTime, nullable=False),
        ),
        "webhook_delivery": Table(
            "webhook_delivery",
            metadata,
            Column("id", big_id, primary_key=True, autoincrement=True),
            Column("delivery_id", String(64), nullable=False, unique=True),
            Column("hook", String(128), nullable=False, index=True),
            Column("event", String(32), nullable=False),
            Column("entity", String(64), nullable=False),
            Column("record_id", BigInteger),
            Column("url", String(1024), nullable=False),
            Column("body", Text, nullable=False),
            Column("body_hash", String(64), nullable=False),
            Column("status", String(16), nullable=False, index=True),
            Column("status_code", Integer),
            Column("attempts", Integer, nullable=False, default=0),
            Column("last_error", String(1000)),
            Column("created_at", DateTime, nullable=False, index=True),
            Column("last_attempt_at", DateTime),
        ),
    }


def define_mfa_table(metadata: MetaData) -> Table:
    """Add `user_mfa` (a login's TOTP second factor, 两步验证) to `metadata`.

    `secret` is encrypted with the field keys; `recovery` holds only hashes of
    the one-time recovery codes; `last_step` is the last TOTP time step used,
    so a code cannot be replayed within its window (app/security/mfa.py). It is
    backed up: after a restore the enrolled authenticator apps still work.
    """
    return Table(
        "user_mfa",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("user_id", Integer, nullable=False, unique=True),
        Column("secret", Text, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("enabled_at", DateTime),
        Column("last_step", BigInteger),
        Column("recovery", Text),
    )


def define_saved_view_table(metadata: MetaData) -> Table:
    """Add `saved_view` (a saved list view, 场景) to `metadata`.

    A view belongs to its owner; with `role` set an admin shares it with every
    user of that role (read-only for them). `state` is JSON: the list's filters,
    search, sort, columns and page size (app/views/grid.py).
    """
    from sqlalchemy import Boolean

    return Table(
        "saved_view",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("user_id", Integer, nullable=False, index=True),
        Column("entity", String(64), nullable=False, index=True),
        Column("name", String(100), nullable=False),
        Column("role", String(64), index=True),
        Column("is_default", Boolean, nullable=False, default=False, server_default="0"),
        Column("state", Text, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
    )


def define_approval_tables(metadata: MetaData) -> dict[str, Table]:
    """Add the approval tables (审批, app/approvals) to `metadata`.

    `approval_request` is one submitted transition waiting for its levels;
    `approval_step` is one approver's place at one level (a role level has a
    row per account that held the role and could read the record when the
    request was made). The inbox badge counts a user's `pending` steps: one
    indexed statement.
    """
    request = Table(
        "approval_request",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("entity", String(64), nullable=False, index=True),
        Column("record_id", Integer, nullable=False, index=True),
        Column("record_title", String(255)),
        Column("transition", String(64), nullable=False),
        Column("from_state", String(64)),
        Column("to_state", String(64), nullable=False),
        Column("pending_state", String(64)),
        Column("submitted_by", Integer, nullable=False, index=True),
        Column("submitted_at", DateTime, nullable=False),
        Column("comment", Text),
        Column("level", Integer, nullable=False, default=1),
        Column("levels", Integer, nullable=False),
        Column("status", String(16), nullable=False, index=True),
        Column("decided_at", DateTime),
    )
    step = Table(
        "approval_step",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("request_id", Integer, ForeignKey("approval_request.id", ondelete="CASCADE"),
               nullable=False, index=True),
        Column("level", Integer, nullable=False),
        Column("approver_id", Integer, nullable=False),
        Column("rule", String(128)),
        Column("status", String(16), nullable=False),
        Column("decided_at", DateTime),
        Column("comment", Text),
        Index("ix_approval_step_inbox", "approver_id", "status"),
    )
    return {"approval_request": request, "approval_step": step}
