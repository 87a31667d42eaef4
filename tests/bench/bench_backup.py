"""Backup and restore time for N customer rows, next to the engines' own tools.

    python tests/bench/bench_backup.py [--rows 1000000] [--backend sqlite|postgresql|mariadb]
    python tests/bench/bench_backup.py --rows 5000 --backends sqlite,postgresql,mariadb

For each backend: seed N rows into `customer`, then time `create_backup`,
`verify_backup`, `restore_backup` into an empty database of the same engine,
and beside them the engine's own tools in the same run: SQLite's `sqlite3
.backup`/`.restore` (the CLI, else Python's online backup API), PostgreSQL's
`pg_dump -Fc` + `pg_restore`, MariaDB's `mariadb-dump` + the `mariadb` client.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from tests.conftest import CRM, build_app, drop_databases, new_database  # noqa: E402


def seed(app, rows: int) -> float:
    """Insert `rows` customers with Core executemany; return the seconds it took."""
    from app.state import state

    started = time.perf_counter()
    with app.app_context():
        table = state().models.table("customer")
        now = dt.datetime(2024, 1, 1, 12, 0, 0, 123456)
        with state().db.engine.begin() as conn:
            for start in range(0, rows, 10_000):
                conn.execute(
                    sa.insert(table),
                    [
                        {
                            "name": f"Customer {i}",
                            "kind": "company",
                            "level": "c",
                            "status": "potential",
                            "membership_level": "none",
                            "points": i % 1000,
                            "credit": Decimal(i % 100000) / 100,
                            "email": f"c{i}@example.com",
                            "created_at": now,
                            "updated_at": now,
                        }
                        for i in range(start, min(rows, start + 10_000))
                    ],
                )
    return time.perf_counter() - started


def timed(func, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = func(*args, **kwargs)
    return time.perf_counter() - started, result


def native_sqlite(db: str, work: Path) -> tuple[float, float]:
    """`sqlite3 db .backup` and the restore (`.restore` into a new file)."""
    out, back = work / "native.db", work / "native_restored.db"
    if shutil.which("sqlite3"):
        backup = timed(subprocess.run, ["sqlite3", db, f".backup '{out}'"], check=True)[0]
        restore = timed(subprocess.run, ["sqlite3", str(back), f".restore '{out}'"], check=True)[0]
        return backup, restore

    def copy(src: str, dst: str) -> None:
        with sqlite3.connect(src) as s, sqlite3.connect(dst) as d:
            s.backup(d)

    return timed(copy, db, str(out))[0], timed(copy, str(out), str(back))[0]


def native_postgres(url: str, work: Path) -> tuple[float, float, int]:
    """`pg_dump -Fc` and `pg_restore` into a new database."""
    u = sa.make_url(url)
    env = {**os.environ, "PGPASSWORD": u.password or ""}
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    dump = work / "native.dump"
    backup = timed(
        subprocess.run, ["pg_dump", *args, "-Fc", "-f", str(dump), u.database], check=True, env=env
    )[0]
    target = sa.make_url(new_database("postgresql", work)).database
    restore = timed(
        subprocess.run,
        ["pg_restore", *args, "-d", target, "--no-owner", str(dump)],
        check=True,
        env=env,
    )[0]
    return backup, restore, dump.stat().st_size


def native_mariadb(url: str, work: Path) -> tuple[float, float, int]:
    """`mariadb-dump` (one consistent snapshot) and loading the dump with the `mariadb` client."""
    u = sa.make_url(url)
    env = {**os.environ, "MYSQL_PWD": u.password or ""}
    args = ["-h", u.host or "127.0.0.1", "-P", str(u.port or 3306), "-u", u.username or "root"]
    dump = work / "native.sql"
    with open(dump, "wb") as out:
        backup = timed(subprocess.run, ["mariadb-dump", *args, "--single-transaction",
                                        "--skip-ssl", u.database], check=True, env=env,
                       stdout=out)[0]
    target = sa.make_url(new_database("mariadb", work)).database
    with open(dump, "rb") as inp:
        restore = timed(subprocess.run, ["mariadb", *args, "--skip-ssl", target], check=True,
                        env=env, stdin=inp)[0]
    return backup, restore, dump.stat().st_size


def bench(backend: str, rows: int, work: Path) -> list[str]:
    from app import create_app
    from app.backup.create import create_backup
    from app.backup.restore import restore_backup
    from app.backup.verify import verify_backup

    os.environ.setdefault("ADMIN_PASSWORD", "Bench-Pass-2024!")
    url = new_database(backend, work)
    app = build_app(CRM, url, work / f"inst_{backend}")
    seeded = seed(app, rows)
    with app.app_context():
        t_backup, path = timed(create_backup, work / f"{backend}.sdbackup")
        t_verify, result = timed(verify_backup, path)
        assert result.ok, result.problems
    target = create_app(
        {
            "SCHEMA_PATH": str(CRM),
            "DATABASE_URL": new_database(backend, work),
            "INSTANCE_PATH": str(work / f"inst_{backend}"),
            "TESTING": True,
        }
    )
    with target.app_context():
        t_restore, report = timed(restore_backup, path)
    size = path.stat().st_size
    if backend == "sqlite":
        n_backup, n_restore = native_sqlite(sa.make_url(url).database, work)
        native = (
            "sqlite3 .backup / .restore",
            n_backup,
            n_restore,
            Path(work / "native.db").stat().st_size,
        )
    elif backend == "mariadb":
        n_backup, n_restore, n_size = native_mariadb(url, work)
        native = ("mariadb-dump / mariadb", n_backup, n_restore, n_size)
    else:
        n_backup, n_restore, n_size = native_postgres(url, work)
        native = ("pg_dump -Fc / pg_restore", n_backup, n_restore, n_size)
    mb = 1024 * 1024
    return [
        f"{backend}: {rows} customer rows (+{report.rows - rows} other rows), seeded in "
        f"{seeded:.1f}s",
        f"  schemadesk backup   {t_backup:7.1f}s  {size / mb:7.1f} MB  "
        f"({rows / t_backup:,.0f} rows/s)",
        f"  schemadesk verify   {t_verify:7.1f}s",
        f"  schemadesk restore  {t_restore:7.1f}s  ({rows / t_restore:,.0f} rows/s, includes "
        f"verify + read-back check)",
        f"  {native[0]:<26} backup {native[1]:6.1f}s  restore {native[2]:6.1f}s  "
        f"{native[3] / mb:7.1f} MB",
        f"  ratio to native            backup {t_backup / max(native[1], 1e-3):5.1f}x  "
        f"restore {t_restore / max(native[2], 1e-3):5.1f}x",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql, mariadb")
    parser.add_argument("--backend", help="one backend (same as --backends with one name)")
    args = parser.parse_args()
    if args.backend:
        args.backends = args.backend
    lines = []
    with tempfile.TemporaryDirectory(prefix="sd_bench_") as tmp:
        try:
            for backend in args.backends.split(","):
                lines += bench(backend, args.rows, Path(tmp))
                print("\n".join(lines[-6:]), flush=True)
        finally:
            drop_databases()
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
