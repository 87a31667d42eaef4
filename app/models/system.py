"""The console's own tables: the audit log (with its chain head), job runs, sessions."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)


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
    }


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
