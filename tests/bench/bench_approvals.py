"""Time the approvals badge (one COUNT per page) and the inbox with 100k approval steps
(not collected by pytest).

    python tests/bench/bench_approvals.py                       # SQLite
    python tests/bench/bench_approvals.py --backend postgresql

50,000 requests with two levels each (100,000 `approval_step` rows) spread over
1,000 approvers; reported: `pending_count` (the top bar's badge) and `inbox`
per call, averaged over every approver, and the query plan of the count.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

APPROVERS = 1000


def main() -> None:
    import sqlalchemy as sa

    from tests.conftest import CRM, build_app, drop_databases, new_database

    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        app = build_app(CRM, new_database(args.backend, tmp), tmp / "instance")
        with app.app_context():
            from app.approvals.service import inbox, pending_count
            from app.state import state

            session = state().db.session
            system = state().models.system
            request, step = system["approval_request"], system["approval_step"]
            now = dt.datetime(2026, 11, 24)
            session.execute(sa.insert(request), [
                {"entity": "sales_order", "record_id": i, "transition": "submit",
                 "to_state": "approved", "submitted_by": 1, "submitted_at": now, "level": 1,
                 "levels": 2, "status": "pending"} for i in range(1, args.requests + 1)])
            ids = list(session.execute(sa.select(request.c.id)).scalars())
            rows = []
            for n, rid in enumerate(ids):
                rows.append({"request_id": rid, "level": 1, "approver_id": 2 + n % APPROVERS,
                             "status": "pending" if n % 3 else "approved"})
                rows.append({"request_id": rid, "level": 2,
                             "approver_id": 2 + (n * 7) % APPROVERS, "status": "waiting"})
            session.execute(sa.insert(step), rows)
            session.commit()
            for name, call in (("pending_count", lambda u: pending_count(u)),
                               ("inbox", lambda u: inbox(u, "zh"))):
                start = time.perf_counter()
                for user_id in range(2, 2 + APPROVERS):
                    call(user_id)
                each = (time.perf_counter() - start) / APPROVERS * 1000
                print(f"{args.backend}: {len(rows)} steps, {name}: {each:.2f} ms per call")
            if args.backend == "sqlite":
                plan = session.execute(sa.text(
                    "EXPLAIN QUERY PLAN SELECT count(*) FROM approval_step "
                    "WHERE approver_id = 5 AND status = 'pending'")).all()
                print(plan)
    finally:
        drop_databases()


if __name__ == "__main__":
    main()
