"""Time the customer list at N rows: one page vs its raw SQL, p95, throughput (not collected).

    python tests/bench/bench_list.py --backend postgresql --rows 1000000
    python tests/bench/bench_list.py --rows 5000 --backend sqlite --runs 5 --seconds 3

Rows come from bench_dashboard's generator (customers, and a tenth each of
follow-ups, requests and orders). Reported, as the admin:

- each list URL (plain; a search and two filters; a filter and a sort): the
  median and p95 of `--runs` requests through the app, and the same statements
  the page ran, replayed on a raw connection (the floor: what the database
  alone costs). Target on PostgreSQL at 1M: page <= 2x raw, p95 < 100 ms with a
  search and two filters;
- throughput: the list served by gunicorn with 2 workers, `--clients` threads
  for `--seconds` seconds (req/s, p50/p95, errors).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

URLS = {
    "list, default order": "/customer/list/",
    "search + 2 filters": "/customer/list/?q=Customer 12&f_kind=company&f_level=a",
    "filter + sort by name": "/customer/list/?f_kind=person&_oc_CustomerView=name"
                             "&_od_CustomerView=asc",
    "detail": "/customer/show/{id}",
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def page_and_raw(app: Any, client: Any, url: str, runs: int) -> dict[str, float]:
    """Time `url` through the app, and the statements it ran replayed on a raw connection."""
    from sqlalchemy import event

    from app.state import state

    with app.app_context():
        engine = state().db.engine
    captured: list[tuple[str, Any]] = []

    def on_execute(conn, cursor, statement, params, context, executemany):  # noqa: ANN001
        captured.append((statement, params))

    client.get(url)  # warm
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        assert client.get(url).status_code == 200, url
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    page, raw = [], []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        page.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, url
    with engine.connect() as conn:
        cursor_conn = conn.connection.driver_connection
        for _ in range(runs):
            started = time.perf_counter()
            cursor = cursor_conn.cursor()
            for statement, params in captured:
                cursor.execute(statement, params)
                if cursor.description:
                    cursor.fetchall()
            cursor.close()
            raw.append((time.perf_counter() - started) * 1000)
        cursor_conn.rollback()
    return {"statements": len(captured), "p50": statistics.median(page),
            "p95": percentile(page, 0.95), "raw p50": statistics.median(raw)}


# -- gunicorn, 2 workers ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(database_url: str, instance: Path, workers: int = 2,
             threads: int = 4) -> Any:
    """Serve the CRM on `database_url` with gunicorn; yield its base URL."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, INSTANCE_PATH=str(instance),
               SCHEMA_PATH=str(ROOT / "schema" / "crm.yaml"), SECRET_KEY="bench-" + "x" * 40,
               RATELIMIT_ENABLED="0", SCHEMADESK_LANG="en")
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads),
         "-b", f"127.0.0.1:{port}", "--log-level", "warning", "app:wsgi()"],
        cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/login/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def session(base: str, username: str = "admin", password: str | None = None) -> Any:
    """A urllib opener logged in to `base`."""
    from tests.conftest import ADMIN_PASSWORD

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    form = opener.open(base + "/login/", timeout=30).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    opener.open(base + "/login/", urllib.parse.urlencode(
        {"username": username, "password": password or ADMIN_PASSWORD,
         "csrf_token": token.group(1) if token else ""}).encode(), timeout=30)
    opener.open(base + "/lang/en", timeout=30)
    return opener


def hammer(base: str, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` threads GET `paths` round-robin for `seconds`; return req/s and latencies."""
    timings: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds
    openers = [session(base) for _ in range(clients)]

    def run(opener: Any, offset: int) -> None:
        i = offset
        while time.monotonic() < stop:
            path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            try:
                with opener.open(base + urllib.parse.quote(path, safe="/?=&_"),
                                 timeout=30) as response:
                    response.read()
                timings.append((time.perf_counter() - started) * 1000)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(f"{path}: {exc}")

    threads = [threading.Thread(target=run, args=(o, n)) for n, o in enumerate(openers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"requests": len(timings), "req/s": len(timings) / elapsed, "errors": len(errors),
            "first errors": errors[:3], "p50": percentile(timings, 0.5) if timings else 0,
            "p95": percentile(timings, 0.95) if timings else 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="postgresql",
                        choices=("sqlite", "postgresql", "mariadb"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args(argv)

    import sqlalchemy as sa

    from app.state import state
    from tests.bench.bench_dashboard import generate
    from tests.conftest import CRM, build_app, drop_databases, login, new_database

    tmp = Path(tempfile.mkdtemp(prefix="bench_list_"))
    try:
        url = new_database(args.backend, tmp)
        app = build_app(CRM, url, tmp / "instance")
        started = time.perf_counter()
        generate(app, args.rows, 0)
        with app.app_context():
            table = state().models.table("customer")
            some_id = state().db.session.execute(sa.select(sa.func.max(table.c.id))).scalar()
        print(f"{args.backend}, {args.rows:,} customers "
              f"(generated in {time.perf_counter() - started:.0f} s), {args.runs} runs:")
        with app.test_client() as client:
            login(client)
            for name, path in URLS.items():
                got = page_and_raw(app, client, path.format(id=some_id), args.runs)
                print(f"  {name:24} page p50 {got['p50']:7.1f} ms  p95 {got['p95']:7.1f} ms  "
                      f"raw SQL {got['raw p50']:7.1f} ms  ({got['statements']} statements, "
                      f"{got['p50'] / max(got['raw p50'], 0.01):.1f}x)")
        if args.seconds > 0:
            with gunicorn(url, tmp / "instance") as base:
                paths = [URLS["list, default order"], URLS["search + 2 filters"]]
                got = hammer(base, paths, args.clients, args.seconds)
                print(f"  gunicorn 2 workers, {args.clients} clients, {args.seconds:.0f} s: "
                      f"{got['req/s']:.1f} req/s, p50 {got['p50']:.0f} ms, "
                      f"p95 {got['p95']:.0f} ms, {got['errors']} errors {got['first errors']}")
    finally:
        drop_databases()
    return 0


if __name__ == "__main__":
    sys.exit(main())
