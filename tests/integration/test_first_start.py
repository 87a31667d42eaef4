"""`python run.py` on a fresh machine: a quiet start that ends with the URL and the password."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT


def test_first_start_prints_the_admin_password_last_and_quietly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ADMIN_PASSWORD"}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", INSTANCE_PATH=str(tmp_path / "i"),
               PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "run.py", "--port", "0"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("+") and len([x for x in lines if x.startswith("+")]) == 2:
                break
    finally:
        process.terminate()
        process.wait(timeout=10)
    box = [x for x in lines if x.startswith("|")]
    assert any("Password:" in x for x in box), lines
    assert any("SchemaDesk is running: http://" in x for x in box)
    before = lines[: lines.index(next(x for x in lines if x.startswith("+")))]
    assert not [x for x in before if "WARNING" in x or "Refused" in x], before
