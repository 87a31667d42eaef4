"""CI smoke test of the benchmarks: every tests/bench/bench_*.py runs at ~5k rows.

No timing assertions (CI machines vary): a script must run to the end, exit 0
and print its figures. Each script gets the small arguments below; a new
script not listed here is run with `--rows 5000 --backend sqlite`, so adding
a benchmark without a smoke entry still fails loudly if that does not work.
Scripts whose point is PostgreSQL (COPY, lists at 1M rows, gunicorn load) run
on PostgreSQL; the rest on SQLite, to keep the whole smoke under two minutes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parents[1]
ROWS = 5000

SMOKE_ARGS: dict[str, list[str]] = {
    "bench_import_export": ["--rows", str(ROWS), "--backend", "sqlite"],
    "bench_approvals": ["--backend", "sqlite", "--requests", "500"],
    "bench_audit": ["--backend", "sqlite", "--n", "50", "--verify-entries", "2000",
                    "--rounds", "2"],
    "bench_backup": ["--rows", str(ROWS), "--backends", "sqlite,postgresql"],
    "bench_dashboard": ["--backend", "sqlite", "--rows", str(ROWS), "--runs", "1"],
    "bench_list": ["--backend", "postgresql", "--rows", str(ROWS), "--runs", "3",
                   "--clients", "2", "--seconds", "2"],
    "bench_load": ["--backend", "postgresql", "--rows", str(ROWS), "--users", "2",
                   "--seconds", "3"],
    "bench_reminders": ["--backend", "sqlite", "--n", "500", "--days", "1"],
    "bench_rollups": ["--backends", "sqlite", "--n", "50", "--rounds", "2",
                      "--import-rows", "500"],
}
DEFAULT_ARGS = ["--rows", str(ROWS), "--backend", "sqlite"]
SCRIPTS = sorted(p.stem for p in BENCH.glob("bench_*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_and_prints_its_figures(script: str) -> None:
    args = SMOKE_ARGS.get(script, DEFAULT_ARGS)
    out = subprocess.run([sys.executable, str(BENCH / f"{script}.py"), *args], cwd=ROOT,
                         env=dict(os.environ, ADMIN_PASSWORD="Bench-Pass-2024!",
                                  SCHEMADESK_LANG="en"),
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert re.search(r"\d", out.stdout), f"{script} printed no figures"


def test_every_benchmark_has_its_smoke_arguments() -> None:
    """A benchmark's smoke run is chosen on purpose, not left to the default."""
    assert set(SCRIPTS) <= set(SMOKE_ARGS), sorted(set(SCRIPTS) - set(SMOKE_ARGS))
