"""A restore never rewinds the audit log: the current chain survives it, and records it.

Restoring an older backup would otherwise load its (shorter) audit log over
the current one: the entries written since the backup would be gone and their
ids handed out again, and `audit verify` would still pass, since a prefix of a
valid chain is valid. So when the target already has audit entries, the
restore copies `audit_log` aside inside its own transaction (with the chain
head locked, so no writer slips an entry in between), replaces every other
table, and puts the log and its head back; the backup's audit rows are not
loaded (the backup file keeps them). Only a target without audit entries (a
fresh machine) takes the backup's log. Either way the restore appends its own
`restore` entry to the chain, in the same transaction as the restore where the
engine allows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from app.audit import chain
from app.audit.capture import acting_actor, entry
from app.backup.engine import AUDIT_KEEP_TABLE, quote
from app.state import state

AUDIT_TABLES = ("audit_log", "audit_head")


@dataclass(frozen=True)
class KeptAudit:
    """The current audit log, copied aside: its columns and its head (last id, hash)."""

    columns: list[str]
    head: tuple[int, str] | None


def _tables() -> tuple[sa.Table, sa.Table]:
    system = state().models.system
    return system["audit_head"], system["audit_log"]


def lock_chain(conn: Connection) -> None:
    """Hold the chain for this transaction, so no entry is appended while the log is copied."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"LOCK TABLE {quote(conn, 'audit_head')}, {quote(conn, 'audit_log')} "
            "IN ACCESS EXCLUSIVE MODE"
        )
        return
    head, log = _tables()
    chain.lock_head(conn, head, log)


def set_aside(conn: Connection) -> KeptAudit:
    """Lock the chain and copy the current audit log into AUDIT_KEEP_TABLE; return its head."""
    lock_chain(conn)
    keep, log = quote(conn, AUDIT_KEEP_TABLE), quote(conn, "audit_log")
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {keep}")  # left by a crashed restore
    conn.exec_driver_sql(f"CREATE TABLE {keep} AS SELECT * FROM {log}")
    columns = [c["name"] for c in sa.inspect(conn).get_columns("audit_log")]
    row = conn.exec_driver_sql(
        f"SELECT last_id, last_hash FROM {quote(conn, 'audit_head')} WHERE id = 1"
    ).first()
    return KeptAudit(columns, (int(row[0] or 0), row[1]) if row else None)


def put_back(conn: Connection, kept: KeptAudit) -> None:
    """Replace the restored database's audit log and head with the ones set aside."""
    head, log = _tables()
    columns = ", ".join(quote(conn, c) for c in kept.columns if c in log.c)
    keep = quote(conn, AUDIT_KEEP_TABLE)
    conn.execute(sa.delete(log))
    conn.exec_driver_sql(
        f"INSERT INTO {quote(conn, 'audit_log')} ({columns}) SELECT {columns} FROM {keep}"
    )
    conn.execute(sa.delete(head))
    if kept.head is not None:
        conn.execute(sa.insert(head).values(id=1, last_id=kept.head[0], last_hash=kept.head[1]))
    if conn.dialect.name == "postgresql":
        sequence = conn.execute(
            sa.text("SELECT pg_get_serial_sequence('audit_log', 'id')")
        ).scalar()
        if sequence:
            conn.execute(sa.text("SELECT setval(:seq, COALESCE((SELECT MAX(id) FROM audit_log), "
                                 "0) + 1, false)"), {"seq": sequence})
    conn.exec_driver_sql(f"DROP TABLE {keep}")


def record_restore(conn: Connection, detail: dict[str, Any]) -> int:
    """Append the `restore` entry to the chain in `conn`'s transaction; return its id."""
    head, log = _tables()
    new = entry(acting_actor(), "restore", None, None, Path(str(detail.get("file"))).name,
                None, detail)
    return int(chain.append(conn, head, log, [new])[0]["id"])
