"""Audit overhead: time per create/update with and without audit, and verify speed.

Run: python tests/bench/bench_audit.py [--backend sqlite|postgresql|mariadb] [--n 300]
Each change is its own transaction (a form save), so the figures include the
head lock, the entry insert and the head update that audit adds to a commit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def timed_writes(n: int, tag: str) -> tuple[float, float]:
    """Create `n` customers then update each, one commit each; return ms per op."""
    from app.state import state

    session = state().db.session
    model = state().models.model("customer")
    objects = []
    started = time.perf_counter()
    for i in range(n):
        obj = model(
            name=f"{tag}-{i}",
            kind="company",
            points=0,
            level="c",
            phone=f"13{uuid.uuid4().int % 10**9:09d}",
        )
        session.add(obj)
        session.commit()
        objects.append(obj)
    create_ms = (time.perf_counter() - started) * 1000 / n
    started = time.perf_counter()
    for i, obj in enumerate(objects):
        obj.level = "a" if i % 2 else "b"
        obj.points = i
        session.commit()
    update_ms = (time.perf_counter() - started) * 1000 / n
    session.remove()
    return create_ms, update_ms


EVENTS = (
    "before_flush",
    "after_flush",
    "before_commit",
    "after_soft_rollback",
    "after_transaction_end",
    "do_orm_execute",
)


def set_audit(app: object, on: bool) -> None:
    """Attach or detach the audit listeners (to interleave measured rounds)."""
    from sqlalchemy import event

    capture = app.extensions["schemadesk_audit"]  # type: ignore[attr-defined]
    for name in EVENTS:
        listener = getattr(capture, name)
        if on and not event.contains(capture.factory, name, listener):
            event.listen(capture.factory, name, listener)
        elif not on and event.contains(capture.factory, name, listener):
            event.remove(capture.factory, name, listener)


def fill_log(entries: int) -> None:
    """Append `entries` events in batches of 1000 (as an import would)."""
    from app.audit import chain
    from app.audit.capture import entry
    from app.context import Actor
    from app.state import state

    actor = Actor(None, "bench", "job")
    log, head = state().models.system["audit_log"], state().models.system["audit_head"]
    for start in range(0, entries, 1000):
        batch = [
            entry(
                actor,
                "create",
                "tag",
                i,
                f"tag {i}",
                {"name": {"before": None, "after": f"tag {i}"}},
                None,
            )
            for i in range(start, min(entries, start + 1000))
        ]
        with state().db.engine.begin() as conn:
            chain.append(conn, head, log, batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql", "mariadb"])
    parser.add_argument("--n", type=int, default=300, help="records created and updated")
    parser.add_argument("--verify-entries", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds")
    args = parser.parse_args()

    from app.audit.service import run_verify
    from tests.conftest import CRM, build_app, drop_databases, new_database

    tmp = Path(tempfile.mkdtemp(prefix="bench_audit_"))
    url = new_database(args.backend, tmp)
    try:
        app = build_app(CRM, url, tmp / "instance")
        with app.app_context():
            timed_writes(20, "warmup")
            totals = {True: [0.0, 0.0], False: [0.0, 0.0]}
            per_round = max(1, args.n // args.rounds)
            for r in range(args.rounds):
                for on in (True, False) if r % 2 == 0 else (False, True):
                    set_audit(app, on)
                    create_ms, update_ms = timed_writes(per_round, f"r{r}-{on}")
                    totals[on][0] += create_ms / args.rounds
                    totals[on][1] += update_ms / args.rounds
            set_audit(app, True)
            (with_create, with_update), (without_create, without_update) = (
                totals[True],
                totals[False],
            )
            fill_log(args.verify_entries)
            started = time.perf_counter()
            result = run_verify(record=False)
            seconds = time.perf_counter() - started
        print(f"backend: {args.backend}, {args.n} records, one commit per change")
        print(
            f"create: {without_create:.2f} ms without audit, {with_create:.2f} ms with "
            f"(+{with_create - without_create:.2f} ms, "
            f"{(with_create / without_create - 1) * 100:.0f}%)"
        )
        print(
            f"update: {without_update:.2f} ms without audit, {with_update:.2f} ms with "
            f"(+{with_update - without_update:.2f} ms, "
            f"{(with_update / without_update - 1) * 100:.0f}%)"
        )
        print(
            f"verify: {result.count} entries in {seconds:.2f} s = "
            f"{result.count / seconds:,.0f} entries/s (ok={result.ok})"
        )
    finally:
        drop_databases()
    return 0


if __name__ == "__main__":
    sys.exit(main())
