"""Benchmark: import / re-import / export of the CRM customer vs the bare-SQL floors.

    python tests/bench/bench_import_export.py --rows 1000000 --backend postgresql
    python tests/bench/bench_import_export.py --rows 5000 --backend sqlite   # the CI smoke

Floors, measured in the same run on the same table: import and re-import
against a bare Core executemany of the same rows (typed already: no parsing,
validation, lookups, rollups or audit); export against PostgreSQL's
`COPY (SELECT ...) TO STDOUT` of the same columns, or a server-side cursor
dumped with csv.writer on SQLite and MariaDB. Each phase runs in its own
process so that its peak RSS (resource.getrusage) is its own; a 10k-row import
gives the RSS that a big file must stay within 50 MB of (flat memory).
Prints one JSON line per phase and a table with each figure next to its floor.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_app(url: str, instance: str):  # noqa: ANN201 - a Flask app
    from tests.conftest import CRM, build_app

    return build_app(CRM, url, Path(instance))


def rows_for(n: int, offset: int = 0) -> Iterator[list[str]]:
    kinds = ["个人", "企业", "company", "person"]
    for i in range(n):
        yield [f"客户{offset + i}", kinds[i % 4], f"1{(offset + i):010d}",
               f"user{offset + i}@example.com", f"{(i % 5000) * 1.5:,.2f}", str(i % 1000),
               "华东" if i % 2 else "north"]


HEADERS = ["名称", "类型", "电话", "邮箱", "信用额度", "积分", "区域"]


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", encoding="gbk", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        writer.writerows(rows)


def write_inputs(directory: Path, n: int, xlsx: bool = False) -> tuple[Path, Path | None]:
    csv_path = directory / "customers.csv"
    write_csv(csv_path, rows_for(n))
    if not xlsx:
        return csv_path, None
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("客户")
    sheet.append(HEADERS)
    for row in rows_for(n, offset=n):
        sheet.append(row)
    xlsx_path = directory / "customers.xlsx"
    workbook.save(xlsx_path)
    return csv_path, xlsx_path


def dump_floor(engine, table, path: Path) -> int:  # noqa: ANN001 - Engine, Table
    """The export floor: the same columns, straight from the database to a CSV file."""
    import sqlalchemy as sa

    columns = [c for c in table.c]
    select = sa.select(*columns)
    if engine.dialect.name == "postgresql":
        sql = str(select.compile(engine, compile_kwargs={"literal_binds": True}))
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cur, open(path, "wb") as fh:
                with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                    for block in copy:
                        fh.write(block)
        finally:
            raw.close()
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    count = 0
    with engine.connect() as conn, open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        result = conn.execution_options(stream_results=True, yield_per=1000).execute(select)
        for part in result.partitions():
            writer.writerows(part)
            count += len(part)
    return count


def phase(name: str, url: str, instance: str, path: str, n: int) -> dict:
    import sqlalchemy as sa

    from app.state import state

    app = make_app(url, instance)
    with app.app_context():
        table = state().models.table("customer")
        # bare SQL writes the columns as they are (no sealing: the floor, not a console write)
        from app.models.types import SubjectText

        raw = sa.table("customer", *(sa.column(c.name, sa.Text if isinstance(c.type, SubjectText)
                                               else c.type) for c in table.columns))
        started = time.perf_counter()
        if name in ("import_csv", "import_xlsx", "reimport_csv", "import_small"):
            from app.io.importer import import_file

            result = import_file("customer", path)
            done = result.created + result.updated + result.unchanged
            assert result.rejected == 0, result.problems[:3]
        elif name == "baseline":
            # the same rows, already typed, straight into the table: no parsing,
            # no validation, no lookups — the floor the importer is measured against
            import datetime as dt

            stamp = dt.datetime.now()
            source = rows_for(n, offset=2 * n)
            seconds, done = 0.0, 0
            with state().db.engine.begin() as conn:
                while True:
                    batch = [{"name": r[0], "kind": "company", "phone": f"2{r[2][1:]}",
                              "email": r[3], "credit": Decimal(r[4].replace(",", "")),
                              "points": int(r[5]), "region": "east", "level": "c",
                              "status": "potential", "membership_level": "none",
                              "created_at": stamp, "updated_at": stamp}
                             for r in itertools.islice(source, 1000)]
                    if not batch:
                        break
                    tick = time.perf_counter()  # only the statements are timed
                    conn.execute(sa.insert(raw), batch)
                    seconds += time.perf_counter() - tick
                    done += len(batch)
            started = time.perf_counter() - seconds
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
                    conn.execute(sa.insert(raw), batch)
            done = max(0, need)
        elif name == "export_floor":
            done = dump_floor(state().db.engine, table, Path(path))
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


FLOORS = {"import_csv": "baseline", "reimport_csv": "baseline", "import_xlsx": "baseline",
          "export_csv": "export_floor"}


def report(backend: str, results: list[dict]) -> None:
    """Print each figure next to its floor (rows/s, ratio) and the peak RSS."""
    by_name = {r["phase"]: r for r in results}
    print(f"\n{backend}: each figure beside its floor, same run")
    print(f"  {'phase':<13}{'rows':>9}{'s':>9}{'rows/s':>10}  {'floor':<13}{'rows/s':>10}"
          f"{'ratio':>8}{'peak RSS MB':>13}")
    for r in results:
        floor = by_name.get(FLOORS.get(r["phase"], ""))
        ratio = (f"{r['rows_per_s'] / floor['rows_per_s']:.2f}x"
                 if floor and floor["rows_per_s"] and r["rows_per_s"] else "")
        print(f"  {r['phase']:<13}{r['rows']:>9}{r['seconds']:>9}{r['rows_per_s'] or 0:>10}  "
              f"{floor['phase'] if floor else '':<13}{floor['rows_per_s'] if floor else '':>10}"
              f"{ratio:>8}{r['peak_rss_mb']:>13}")
    small, big = by_name.get("import_small"), by_name.get("import_csv")
    if small and big:
        print(f"  import peak RSS: {big['peak_rss_mb']} MB for {big['rows']} rows vs "
              f"{small['peak_rss_mb']} MB for {small['rows']} rows "
              f"(+{big['peak_rss_mb'] - small['peak_rss_mb']:.1f} MB; target within 50 MB)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql", "mariadb"])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--export-rows", type=int, default=None,
                        help="rows in the table for the export (default: --rows)")
    parser.add_argument("--xlsx", action="store_true", help="also import an XLSX file")
    parser.add_argument("--phase", nargs=5, default=None,
                        metavar=("NAME", "URL", "INSTANCE", "PATH", "N"))
    args = parser.parse_args()
    os.environ.setdefault("ADMIN_PASSWORD", "Bench-Pass-2024!")
    if args.phase:
        name, url, instance, path, n = args.phase
        print(json.dumps(phase(name, url, instance, path, int(n))))
        return
    from tests.conftest import drop_databases, new_database

    export_rows = args.export_rows or args.rows
    small_rows = min(10_000, args.rows)
    tmp = Path(tempfile.mkdtemp(prefix="sd-bench-"))
    url = new_database(args.backend, tmp)
    instance = str(tmp / "instance")
    env = dict(os.environ, SCHEMADESK_LANG="en")
    try:
        make_app(url, instance)  # migrate once
        csv_path, xlsx_path = write_inputs(tmp, args.rows, xlsx=args.xlsx)
        small_path = tmp / "small.csv"
        write_csv(small_path, rows_for(small_rows, offset=3 * args.rows))
        results = [
            run_phase(["import_small", url, instance, str(small_path), str(small_rows)], env),
            run_phase(["import_csv", url, instance, str(csv_path), str(args.rows)], env),
            run_phase(["reimport_csv", url, instance, str(csv_path), str(args.rows)], env),
        ]
        if args.xlsx:
            results.append(run_phase(["import_xlsx", url, instance, str(xlsx_path),
                                      str(args.rows)], env))
        results += [
            run_phase(["baseline", url, instance, "-", str(args.rows)], env),
            run_phase(["fill", url, instance, "-", str(export_rows)], env),
            run_phase(["export_csv", url, instance, str(tmp / "out.csv"), "0"], env),
            run_phase(["export_floor", url, instance, str(tmp / "floor.csv"), "0"], env),
        ]
        report(args.backend, results)
    finally:
        drop_databases()


if __name__ == "__main__":
    main()
