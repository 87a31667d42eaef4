"""Benchmark: import 100k rows (CSV and XLSX) vs bare Core executemany; export 1M rows.

    python tests/bench/bench_import_export.py --backend sqlite
    python tests/bench/bench_import_export.py --backend postgresql --export-rows 1000000

Each phase runs in its own process so that its peak RSS is its own. Prints one
JSON line per phase and a summary table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_app(url: str, instance: str):  # noqa: ANN201 - a Flask app
    from tests.conftest import CRM, build_app

    return build_app(CRM, url, Path(instance))


def rows_for(n: int, offset: int = 0) -> list[list[str]]:
    kinds = ["个人", "企业", "company", "person"]
    return [[f"客户{offset + i}", kinds[i % 4], f"1{(offset + i):010d}",
             f"user{offset + i}@example.com", f"{(i % 5000) * 1.5:,.2f}", str(i % 1000),
             "华东" if i % 2 else "north"] for i in range(n)]


HEADERS = ["名称", "类型", "电话", "邮箱", "信用额度", "积分", "区域"]


def write_inputs(directory: Path, n: int) -> tuple[Path, Path]:
    csv_path = directory / "customers.csv"
    with open(csv_path, "w", encoding="gbk", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        writer.writerows(rows_for(n))
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("客户")
    sheet.append(HEADERS)
    for row in rows_for(n, offset=n):
        sheet.append(row)
    xlsx_path = directory / "customers.xlsx"
    workbook.save(xlsx_path)
    return csv_path, xlsx_path


def phase(name: str, url: str, instance: str, path: str, n: int) -> dict:
    import sqlalchemy as sa

    from app.state import state

    app = make_app(url, instance)
    with app.app_context():
        table = state().models.table("customer")
        started = time.perf_counter()
        if name in ("import_csv", "import_xlsx"):
            from app.io.importer import import_file

            result = import_file("customer", path)
            done = result.created + result.updated + result.unchanged
            assert result.rejected == 0, result.problems[:3]
        elif name == "baseline":
            # the same rows, already typed, straight into the table: no parsing,
            # no validation, no lookups — the floor the importer is measured against
            now = time.time()
            import datetime as dt

            stamp = dt.datetime.fromtimestamp(now)
            rows = [{"name": r[0], "kind": "company", "phone": f"2{r[2][1:]}", "email": r[3],
                     "credit": Decimal(r[4].replace(",", "")), "points": int(r[5]),
                     "region": "east", "level": "c", "status": "potential",
                     "membership_level": "none", "created_at": stamp, "updated_at": stamp}
                    for r in rows_for(n, offset=2 * n)]
            started = time.perf_counter()
            with state().db.engine.begin() as conn:
                for i in range(0, len(rows), 1000):
                    conn.execute(sa.insert(table), rows[i:i + 1000])
            done = len(rows)
        elif name == "fill":
            import datetime as dt

            stamp = dt.datetime.now()
            with state().db.engine.begin() as conn:
                have = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            need = n - have
            for start in range(0, max(0, need), 10000):
                batch = [{"name": f"导出{have + start + i}", "kind": "company",
                          "phone": f"3{(have + start + i):010d}", "credit": Decimal("12.50"),
                          "points": i, "region": "east", "level": "c", "status": "active",
                          "membership_level": "none", "remark": "=cmd|' /C calc'!A0",
                          "created_at": stamp, "updated_at": stamp}
                         for i in range(min(10000, need - start))]
                with state().db.engine.begin() as conn:
                    conn.execute(sa.insert(table), batch)
            done = max(0, need)
        elif name.startswith("export"):
            from app.io.exporter import export_file

            fmt = "xlsx" if name == "export_xlsx" else "csv"
            done = export_file("customer", Path(path), fmt=fmt, lang="zh")
        else:
            raise SystemExit(f"unknown phase {name}")
        seconds = time.perf_counter() - started
    return {"phase": name, "rows": done, "seconds": round(seconds, 2),
            "rows_per_s": round(done / seconds) if seconds else None,
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def run_phase(args: list[str], env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", *args], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(out.stdout + out.stderr)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql", "mariadb"])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--phase", nargs=5, default=None,
                        metavar=("NAME", "URL", "INSTANCE", "PATH", "N"))
    args = parser.parse_args()
    os.environ.setdefault("ADMIN_PASSWORD", "Bench-Pass-2024!")
    if args.phase:
        name, url, instance, path, n = args.phase
        print(json.dumps(phase(name, url, instance, path, int(n))))
        return
    from tests.conftest import drop_databases, new_database

    tmp = Path(tempfile.mkdtemp(prefix="sd-bench-"))
    url = new_database(args.backend, tmp)
    instance = str(tmp / "instance")
    env = dict(os.environ, SCHEMADESK_LANG="en")
    try:
        make_app(url, instance)  # migrate once
        csv_path, xlsx_path = write_inputs(tmp, args.rows)
        results = [
            run_phase(["import_csv", url, instance, str(csv_path), str(args.rows)], env),
            run_phase(["import_xlsx", url, instance, str(xlsx_path), str(args.rows)], env),
            run_phase(["baseline", url, instance, "-", str(args.rows)], env),
            run_phase(["fill", url, instance, "-", str(args.export_rows)], env),
            run_phase(["export_csv", url, instance, str(tmp / "out.csv"), "0"], env),
        ]
        print(f"\n{args.backend}: {args.rows} import rows, {args.export_rows} export rows")
        for r in results:
            print(f"  {r['phase']:<12} {r['rows']:>9} rows {r['seconds']:>8}s "
                  f"{r['rows_per_s'] or 0:>9} rows/s  peak RSS {r['peak_rss_mb']} MB")
    finally:
        drop_databases()


if __name__ == "__main__":
    main()
