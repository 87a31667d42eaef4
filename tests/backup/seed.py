"""Rows of every kind for backup tests: unicode, decimals, times with microseconds, NULLs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from app.context import Actor, acting_as
from app.state import state


def seed_crm(count: int = 20, prefix: str = "") -> None:
    """Add employees, tags, customers (with tags, an encrypted field), follow-ups, orders."""
    st = state()
    session = st.db.session
    m = st.models.model
    with acting_as(Actor(user_id=1, name="admin", source="cli")):
        tags = [m("tag")(name=f"标签-{prefix}{i}", color="red") for i in range(3)]
        boss = m("employee")(name="张三", employee_no=f"E-{prefix}1", active=True)
        session.add_all([*tags, boss])
        session.flush()
        for i in range(count):
            customer = m("customer")(
                name=f"客户 {i} \"quoted\" \\ back\nline",
                kind="company" if i % 2 else "person",
                credit=Decimal("1234.50") + i,
                points=i * 7,
                id_no=f"ID-{i:04d}" if i % 3 else None,
                remark=None if i % 4 else "备注 ✓",
                owner=boss if i % 2 else None,
                tags=tags[: i % 4],
            )
            session.add(customer)
            session.flush()
            session.add(
                m("follow_up")(
                    customer=customer,
                    method="phone",
                    content=f"跟进 {i}",
                    followed_at=dt.datetime(2024, 5, 17, 9, 30, 15, 123456 + i),
                    next_follow_up=dt.date(2024, 6, 1),
                )
            )
        session.add(
            m("product")(name="Widget", sku=f"W-{prefix}1", price=Decimal("0.05"), active=False)
        )
        session.commit()


def table_checksums() -> dict[str, tuple[int, str]]:
    """Rows and SHA-256 of every table of the app's database, as a backup computes them."""
    import hashlib

    from app.backup.create import table_layouts
    from app.backup.engine import dedicated_engine
    from app.backup.format import row_encoder

    engine = dedicated_engine()
    out: dict[str, tuple[int, str]] = {}
    try:
        with engine.connect() as conn:
            for layout in table_layouts(conn):
                encode = row_encoder([t for _, t in layout.columns])
                sha = hashlib.sha256()
                rows = 0
                for row in conn.execute(layout.select()):
                    sha.update(encode(row))
                    rows += 1
                out[layout.name] = (rows, sha.hexdigest())
    finally:
        engine.dispose()
    return out


def scalar(sql: str, **params: Any) -> Any:
    with state().db.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


AUDIT_TABLES = ("audit_log", "audit_head")


def data_checksums() -> dict[str, tuple[int, str]]:
    """`table_checksums()` without the audit log, which a restore appends to, never rewinds."""
    return {t: v for t, v in table_checksums().items() if t not in AUDIT_TABLES}


def audit_rows() -> list[tuple]:
    """Every audit entry as (id, action, hash), oldest first."""
    with state().db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.text("SELECT id, action, hash FROM audit_log ORDER BY id"))]
