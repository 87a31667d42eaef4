"""Load: N users on list, detail and save for S seconds, gunicorn 2 workers (not collected).

    python tests/bench/bench_load.py --backend postgresql --rows 100000 --users 20 --seconds 60
    python tests/bench/bench_load.py --rows 5000 --backend sqlite --users 4 --seconds 5

Each user (its own signed-in session) loops: the list (plain, then searched and
filtered), one customer's detail page, and a save of that customer through the
REST API (`PUT /api/v1/customer/<id>`, the record service: validation, version,
audit entry). Reported per kind: requests, errors, p50/p95. Afterwards the
audit chain is verified (every save wrote an entry; the chain must be intact).
Targets (PostgreSQL): no error, list p95 < 200 ms, audit chain valid.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_list import gunicorn, percentile, session  # noqa: E402

LISTS = ["/customer/list/", "/customer/list/?q=Customer 1&f_kind=company&f_level=b"]


def api_token(base: str) -> str:
    from tests.conftest import ADMIN_PASSWORD

    body = json.dumps({"username": "admin", "password": ADMIN_PASSWORD,
                       "provider": "db"}).encode()
    request = urllib.request.Request(base + "/api/v1/security/login", body,
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["access_token"]


def user_loop(base: str, ids: tuple[int, int], seconds: float, seed: int,
              out: dict[str, list[float]], errors: list[str]) -> None:
    """One user: sign in, then list, detail, save for `seconds`."""
    rng = random.Random(seed)
    opener = session(base)
    token = api_token(base)
    stop = time.monotonic() + seconds
    n = 0
    while time.monotonic() < stop:
        pk = rng.randint(*ids)
        steps = [("list", "GET", LISTS[n % 2], None), ("detail", "GET", f"/customer/show/{pk}",
                                                        None),
                 ("save", "PUT", f"/api/v1/customer/{pk}",
                  json.dumps({"name": f"Customer {pk} v{seed}.{n}"}).encode())]
        n += 1
        for kind, method, path, body in steps:
            url = base + urllib.parse.quote(path, safe="/?=&_")
            started = time.perf_counter()
            try:
                if kind == "save":
                    request = urllib.request.Request(url, body, method=method, headers={
                        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
                    with urllib.request.urlopen(request, timeout=60) as response:
                        response.read()
                else:
                    with opener.open(url, timeout=60) as response:
                        response.read()
                out[kind].append((time.perf_counter() - started) * 1000)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(f"{kind} {path}: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="postgresql",
                        choices=("sqlite", "postgresql", "mariadb"))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args(argv)

    import sqlalchemy as sa

    from app.context import Actor, acting_as
    from app.state import state
    from tests.bench.bench_dashboard import generate
    from tests.conftest import CRM, build_app, drop_databases, new_database

    tmp = Path(tempfile.mkdtemp(prefix="bench_load_"))
    try:
        url = new_database(args.backend, tmp)
        app = build_app(CRM, url, tmp / "instance")
        generate(app, args.rows, 0)
        with app.app_context():
            table = state().models.table("customer")
            low, high = state().db.session.execute(
                sa.select(sa.func.min(table.c.id), sa.func.max(table.c.id))).one()
        out: dict[str, list[float]] = {"list": [], "detail": [], "save": []}
        errors: list[str] = []
        with gunicorn(url, tmp / "instance") as base:
            threads = [threading.Thread(target=user_loop,
                                        args=(base, (low, high), args.seconds, n, out, errors))
                       for n in range(args.users)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
        elapsed = args.seconds  # each user runs `seconds` after signing in
        print(f"{args.backend}, {args.rows:,} customers, {args.users} users, "
              f"{elapsed:.0f} s, gunicorn 2 workers:")
        for kind, timings in out.items():
            if timings:
                print(f"  {kind:7} {len(timings):6} requests  {len(timings) / elapsed:6.1f}/s  "
                      f"p50 {percentile(timings, 0.5):6.0f} ms  "
                      f"p95 {percentile(timings, 0.95):6.0f} ms")
        print(f"  errors: {len(errors)} {errors[:3]}")
        with app.app_context(), acting_as(Actor(None, "bench", "cli")):
            from app.audit.service import run_verify

            result = run_verify(record=False)
        print(f"  audit chain: {'intact' if result.problem is None else result.problem.message}"
              f" ({result.count} entries)")
        return 0 if not errors and result.problem is None else 1
    finally:
        drop_databases()


if __name__ == "__main__":
    sys.exit(main())
