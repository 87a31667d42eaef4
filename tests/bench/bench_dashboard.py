"""Time the dashboard with 100k and 1M customers (not collected by pytest).

    python tests/bench/bench_dashboard.py                       # SQLite, 100k and 1M
    python tests/bench/bench_dashboard.py --backend postgresql --rows 100000

Rows are generated with bulk INSERTs (executemany in chunks): N customers and
N/10 each of follow-ups, service requests and sales orders, spread over two
years and 20 owners. Reported: the dashboard HTML (KPIs and reminder lists are
computed server-side), each chart's JSON, and their sum (what a browser waits
for at most; it fetches the charts in parallel).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CHUNK = 20_000
KINDS = ("person", "company")
LEVELS = ("a", "b", "c", "d", None)
STATUSES = ("new", "in_progress", "resolved", "closed")
START = dt.datetime(2023, 1, 1)


def bulk(engine: Any, table: Any, rows: Any) -> None:
    """Insert the generated rows in chunks of CHUNK.

    Straight through the engine, not the ORM session: this is fixture data, not
    user edits, so the audit log's session hooks are not meant to record it.
    """
    import sqlalchemy as sa

    stmt = sa.insert(table)
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            with engine.begin() as conn:
                conn.execute(stmt, batch)
            batch = []
    if batch:
        with engine.begin() as conn:
            conn.execute(stmt, batch)


def moment(rng: random.Random) -> dt.datetime:
    return START + dt.timedelta(seconds=rng.randrange(2 * 365 * 86400))


def generate(app: Any, customers: int, already: int) -> None:
    """Grow the data set from `already` to `customers` customers (and their tenths)."""
    import sqlalchemy as sa

    from app.state import state

    rng = random.Random(customers)
    with app.app_context():
        engine = state().db.engine
        table = state().models.table
        if already == 0:
            bulk(
                engine,
                table("employee"),
                (
                    {
                        "name": f"Owner {i}",
                        "employee_no": f"B{i:03d}",
                        "active": True,
                        "created_at": START,
                        "updated_at": START,
                    }
                    for i in range(20)
                ),
            )
        with engine.connect() as conn:
            owners = [r[0] for r in conn.execute(sa.select(table("employee").c.id))]
        new = customers - already

        def customer_rows() -> Any:
            for i in range(already, customers):
                created = moment(rng)
                yield {
                    "name": f"Customer {i}",
                    "kind": KINDS[i % 2],
                    "level": LEVELS[i % 5],
                    "status": "active",
                    "credit": Decimal(rng.randrange(100_000)) / 100,
                    "owner_id": rng.choice(owners),
                    "points": 0,
                    "created_at": created,
                    "updated_at": created,
                    "membership_level": "none",
                }

        bulk(engine, table("customer"), customer_rows())
        customer = table("customer")
        with engine.connect() as conn:
            ids = conn.execute(
                sa.select(sa.func.min(customer.c.id), sa.func.max(customer.c.id))
            ).one()
        today = dt.date.today()

        def follow_ups() -> Any:
            for _ in range(new // 10):
                when = moment(rng)
                yield {
                    "customer_id": rng.randint(*ids),
                    "method": "phone",
                    "content": "call",
                    "followed_at": when,
                    "owner_id": rng.choice(owners),
                    "next_follow_up": today + dt.timedelta(days=rng.randint(-30, 30)),
                    "created_at": when,
                    "updated_at": when,
                }

        def requests() -> Any:
            for i in range(new // 10):
                when = moment(rng)
                yield {
                    "title": f"Ticket {i}",
                    "customer_id": rng.randint(*ids),
                    "type": "repair",
                    "status": rng.choice(STATUSES),
                    "priority": "medium",
                    "satisfaction": rng.randint(1, 5),
                    "assignee_id": rng.choice(owners),
                    "created_at": when,
                    "updated_at": when,
                }

        def orders() -> Any:
            for i in range(already // 10, customers // 10):
                when = moment(rng)
                yield {
                    "order_no": f"SO{i:08d}",
                    "customer_id": rng.randint(*ids),
                    "quantity": 1,
                    "amount": Decimal(rng.randrange(1_000_000)) / 100,
                    "status": "paid",
                    "ordered_at": when.date(),
                    "owner_id": rng.choice(owners),
                    "created_at": when,
                    "updated_at": when,
                }

        bulk(engine, table("follow_up"), follow_ups())
        bulk(engine, table("service_request"), requests())
        bulk(engine, table("sales_order"), orders())
        if state().db.engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))


def best_of(client: Any, url: str, runs: int) -> float:
    """Return the fastest of `runs` GETs of `url`, in milliseconds."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return min(timings)


def measure(app: Any, runs: int) -> dict[str, float]:
    """Time the dashboard page and each chart's JSON as the admin: cold and cached.

    Cold: right after every entity's cache generation is bumped (what the first
    reader after a write waits for: the GROUP BY queries). Cached: the best of
    `runs` more (what the next readers of the same scope wait for).
    """
    from app.charts import cache
    from app.state import state
    from tests.conftest import login

    with app.app_context():
        items = [i for i in state().spec.dashboards["home"] if i.chart]
        entities = {e.name for e in state().spec.entities}
    urls = ["/dashboard/"] + [f"/{i.entity}/charts/data/{i.chart}" for i in items]
    result: dict[str, float] = {}
    with app.test_client() as client:
        login(client)
        for _round in range(2):  # the first round warms Python (imports, templates)
            with app.app_context():
                cache.bump(entities)
            cold_ms = {url: best_of(client, url, 1) for url in urls}
        for url in urls:
            result[f"{url} cold"] = cold_ms[url]
            result[f"{url} cached"] = best_of(client, url, runs)
    result["total cold (page + every chart, one after another)"] = sum(
        v for k, v in result.items() if k.endswith(" cold"))
    result["total cached"] = sum(v for k, v in result.items() if k.endswith(" cached"))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql", "mariadb"))
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    from tests.conftest import CRM, build_app, drop_databases, new_database

    tmp = Path(tempfile.mkdtemp(prefix="bench_dashboard_"))
    try:
        app = build_app(CRM, new_database(args.backend, tmp), tmp / "instance")
        have = 0
        for rows in sorted(args.rows):
            started = time.perf_counter()
            generate(app, rows, have)
            have = rows
            print(
                f"\n{args.backend}, {rows:,} customers "
                f"(generated in {time.perf_counter() - started:.0f} s), best of {args.runs}:"
            )
            for url, ms in measure(app, args.runs).items():
                print(f"  {ms:8.0f} ms  {url}")
    finally:
        drop_databases()
    return 0


if __name__ == "__main__":
    sys.exit(main())
