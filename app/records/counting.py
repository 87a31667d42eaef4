"""Bounded counts of a list: never a full COUNT(*) of a big table on every page.

A list page used to ask the database for the exact number of matching rows on
every request (the Django #8408 problem): on a million-row table that full scan
costs more than the page itself. The one rule, used by every list (FAB views
through `SpecInterface.query`, the grid's pagination):

- an unfiltered list on PostgreSQL shows the planner's estimate
  (`pg_class.reltuples`, kept by ANALYZE/autovacuum): "约 1,000,000";
- any other list (a filter, a search, a row rule, or SQLite/MariaDB, which keep
  no trustworthy estimate) counts exactly up to `CAP` rows
  (`SELECT count(*) FROM (SELECT id … LIMIT CAP+1)`), beyond which it shows
  "10,000+";
- `?sd_count=exact` on the URL (the "精确计数" link) asks for the exact number.

Small tables (estimate below `CAP`) are always counted exactly: the capped count
is then exact and cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

CAP = 10_000
EXACT_ARG = "sd_count"


@dataclass(frozen=True)
class ListCount:
    """How many rows a list has, and how sure we are.

    `kind` is "exact", "estimate" (the planner's guess) or "capped" (more than
    `value`). `int(count)` is what paging arithmetic uses.
    """

    value: int
    kind: str = "exact"

    def __int__(self) -> int:
        return self.value

    @property
    def exact(self) -> bool:
        return self.kind == "exact"


def wants_exact() -> bool:
    """Whether the request asked for the exact count (the "精确计数" link)."""
    from flask import has_request_context, request

    return has_request_context() and request.args.get(EXACT_ARG) == "exact"


def table_estimate(session: Any, table_name: str) -> int | None:
    """The planner's row estimate of a PostgreSQL table (None if never analysed)."""
    found = session.execute(
        sa.text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:t)"),
        {"t": table_name}).scalar()
    return None if found is None or found < 0 else int(found)


def capped_count(session: Any, query: Any, cap: int = CAP) -> ListCount:
    """Count the rows of an ORM `query` up to `cap` (one statement, stops at cap+1 rows)."""
    entity = query.column_descriptions[0]["entity"]
    inner = query.with_entities(entity.id).order_by(None).limit(cap + 1).subquery()
    found = session.execute(sa.select(sa.func.count()).select_from(inner)).scalar() or 0
    return ListCount(found) if found <= cap else ListCount(cap, "capped")


def bounded_count(query: Any, exact: bool | None = None) -> ListCount:
    """The count a list page shows for the filtered ORM `query` (see the module doc)."""
    session = query.session
    if exact if exact is not None else wants_exact():
        return ListCount(query.order_by(None).count())
    if session.get_bind().dialect.name == "postgresql" \
            and query.statement.whereclause is None:
        entity = query.column_descriptions[0]["entity"]
        estimate = table_estimate(session, sa.inspect(entity).local_table.name)
        if estimate is not None and estimate > CAP:
            return ListCount(estimate, "estimate")
    return capped_count(session, query)


__all__ = ["CAP", "EXACT_ARG", "ListCount", "bounded_count", "capped_count", "wants_exact"]
