"""Browser tests: the real console (run.py) in a subprocess, Debian's Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
E2E_PASSWORD = "E2e-Admin-Pass-1!"


def sign_in_page(page: Any, url: str, username: str, password: str,
                 lang: str | None = "zh") -> Any:
    """Sign in through the login form; wait until the browser has left it, then pick `lang`.

    A `goto` straight after the click can cancel the login's own navigation on a busy machine
    (the session cookie never arrives), so the click waits for the navigation it starts.
    """
    page.goto(f"{url}/login/", timeout=90_000)  # a server's first page compiles templates
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation(timeout=90_000):
        page.click("input[type=submit], button[type=submit]")
    assert "/login" not in page.url, page.locator("body").inner_text()[:300]
    if lang:
        page.goto(f"{url}/lang/{lang}")
    return page


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_console(instance: Path, **env_overrides: str
                  ) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    """Start `python run.py` on a free port with a fresh SQLite instance (no Redis);
    return the process, its URL and its environment once /login/ answers."""
    port = free_port()
    env = dict(os.environ, INSTANCE_PATH=str(instance), ADMIN_PASSWORD=E2E_PASSWORD,
               RATELIMIT_ENABLED="0", **env_overrides)
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "run.py", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/login/", timeout=2)
            return proc, url, env
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read().decode() if proc.stdout else "died") from None
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("run.py did not start in 90 s")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python run.py` on a free port with a fresh SQLite instance; yields its URL."""
    proc, url, _env = start_console(tmp_path_factory.mktemp("e2e"))
    yield url
    proc.terminate()
    proc.wait(timeout=10)
