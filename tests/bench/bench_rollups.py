"""Rollup overhead: ms per sales-order create/update with and without the rollup rules.

Run: python tests/bench/bench_rollups.py [--backends sqlite,postgresql,mariadb] [--n 300]

The CRM's customer has four rollups over its sales orders (total spent, order
count, last order, points) and two classified enums (level, membership). Each
write goes through the record service (`records("sales_order").create/update`),
one commit each, like a form save; the audit capture is on in both columns, so
the difference is what keeping the rules costs: noting the parent, the
correlated UPDATE of its rollups, the CASE of its classes and the audit entry
of the parent's change. Rounds with and without alternate to share the noise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

EVENTS = ("before_flush", "after_flush", "do_orm_execute", "before_commit")
STATEMENTS = [0]  # SQL statements sent, counted by an engine listener


def count_statements() -> None:
    from sqlalchemy import event

    from app.state import state

    def counted(*_args: object) -> None:
        STATEMENTS[0] += 1

    event.listen(state().db.engine, "before_cursor_execute", counted)


def set_rules(app: object, on: bool) -> None:
    """Attach or detach the rollup listeners (to interleave measured rounds)."""
    from sqlalchemy import event

    keeper = app.extensions["schemadesk_rollups"]  # type: ignore[attr-defined]
    from app.state import state

    factory = state().db.session.session_factory
    for name in EVENTS:
        listener = getattr(keeper, name)
        if on and not event.contains(factory, name, listener):
            event.listen(factory, name, listener,
                         insert=name in ("do_orm_execute", "before_commit"))
        elif not on and event.contains(factory, name, listener):
            event.remove(factory, name, listener)


def customers(count: int) -> list[int]:
    """`count` customers, each with 20 orders already (the parent's aggregate has work)."""
    from app.records import records
    from app.state import state

    ids = []
    for i in range(count):
        cust = records("customer", None).create({"name": f"bench-{uuid.uuid4().hex[:8]}-{i}"})
        ids.append(cust.id)
    table = state().models.table("sales_order")
    session = state().db.session
    session.execute(table.insert(), [
        {"order_no": f"seed-{uuid.uuid4().hex[:12]}", "customer_id": c, "quantity": 1,
         "amount": Decimal(100 + j), "status": "paid", "approval": "draft"}
        for c in ids for j in range(20)])
    session.commit()
    session.remove()
    return ids


def timed_writes(n: int, parents: list[int]) -> tuple[float, float, float, float]:
    """Create `n` orders, then update each (amount, then status); return ms per op
    and SQL statements per op."""
    from app.records import records
    from app.state import state

    service = records("sales_order", None)
    ids = []
    STATEMENTS[0] = 0
    started = time.perf_counter()
    for i in range(n):
        obj = service.create({"order_no": f"b-{uuid.uuid4().hex[:12]}",
                              "customer": parents[i % len(parents)],
                              "amount": Decimal("1000.00"), "status": "paid"})
        ids.append(obj.id)
    create_ms = (time.perf_counter() - started) * 1000 / n
    create_sql, STATEMENTS[0] = STATEMENTS[0] / n, 0
    started = time.perf_counter()
    for i, pk in enumerate(ids):
        values = {"amount": Decimal(2000 + i)} if i % 2 else {"status": "cancelled"}
        service.update(service.get(pk, "update"), values)
    update_ms = (time.perf_counter() - started) * 1000 / n
    update_sql = STATEMENTS[0] / n
    state().db.session.remove()
    return create_ms, update_ms, create_sql, update_sql


def timed_import(rows: int, parents: list[int], tmp: Path) -> float:
    """Import `rows` new orders from a CSV (chunks of 1000, one transaction each);
    return ms per 1000 rows."""
    import csv

    from app.io.importer import import_file
    from app.state import state

    path = tmp / f"orders-{uuid.uuid4().hex[:6]}.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["order_no", "customer", "amount", "status"])
        for i in range(rows):
            writer.writerow([f"i-{uuid.uuid4().hex[:12]}", parents[i % len(parents)],
                             "1500.00", "paid"])
    started = time.perf_counter()
    result = import_file("sales_order", path)
    seconds = time.perf_counter() - started
    assert result.created == rows, result.problems[:3]
    state().db.session.remove()
    return seconds * 1000 * 1000 / rows


def measure(backend: str, n: int, rounds: int, import_rows: int = 0) -> dict[str, float]:
    from tests.conftest import CRM, build_app, new_database

    tmp = Path(tempfile.mkdtemp(prefix="bench_rollups_"))
    app = build_app(CRM, new_database(backend, tmp), tmp / "instance")
    totals = {True: [0.0, 0.0], False: [0.0, 0.0]}
    sql = {True: (0.0, 0.0), False: (0.0, 0.0)}
    with app.app_context():
        count_statements()
        parents = customers(50)
        timed_writes(20, parents)  # warm-up
        per_round = max(1, n // rounds)
        for r in range(rounds):
            for on in (True, False) if r % 2 == 0 else (False, True):
                set_rules(app, on)
                create_ms, update_ms, create_sql, update_sql = timed_writes(per_round, parents)
                sql[on] = (create_sql, update_sql)
                totals[on][0] += create_ms / rounds
                totals[on][1] += update_ms / rounds
        out = {"create_without": totals[False][0], "create_with": totals[True][0],
               "update_without": totals[False][1], "update_with": totals[True][1],
               "create_sql": sql[True][0] - sql[False][0],
               "update_sql": sql[True][1] - sql[False][1]}
        if import_rows:
            for on in (False, True):
                set_rules(app, on)
                out[f"import_{'with' if on else 'without'}"] = timed_import(
                    import_rows, parents, tmp)
        set_rules(app, True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--n", type=int, default=300, help="orders created and updated")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds")
    parser.add_argument("--import-rows", type=int, default=5000,
                        help="orders imported from a CSV (0: no import figure)")
    args = parser.parse_args()

    from tests.conftest import drop_databases

    results = {}
    try:
        for backend in args.backends.split(","):
            results[backend] = measure(backend, args.n, args.rounds, args.import_rows)
    finally:
        drop_databases()
    print(f"sales_order writes through the record service, one commit each, n={args.n}, "
          f"customers with 20 orders each")
    print(f"{'ms per write (import: per 1000 rows)':<28}")
    print(f"{'':<28}" + "".join(f"{b:>14}" for b in results))
    for op in ("create", "update") + (("import",) if args.import_rows else ()):
        for label, key in (("without rollups", f"{op}_without"), ("with rollups", f"{op}_with")):
            print(f"{op + ' ' + label:<28}" + "".join(f"{r[key]:>14.2f}" for r in results.values()))
        print(f"{op + ' overhead':<28}" + "".join(
            f"{r[op + '_with'] - r[op + '_without']:>+10.2f} ms" for r in results.values()))
        if f"{op}_sql" in next(iter(results.values())):
            print(f"{op + ' extra SQL statements':<28}" + "".join(
                f"{r[op + '_sql']:>14.1f}" for r in results.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
