"""Job kinds the jobs package itself provides."""

from __future__ import annotations

import time
from typing import Any

from app.jobs import JobContext, register_kind


def wait_job(ctx: JobContext, seconds: float = 1, **_: Any) -> dict[str, Any]:
    """Sleep `seconds`, reporting progress: checks that workers take and finish jobs."""
    steps = max(1, int(seconds * 10))
    for step in range(steps):
        time.sleep(seconds / steps)
        ctx.progress(step + 1, steps)
    return {"counts": {"seconds": seconds}}


def register() -> None:
    """Register the built-in kinds."""
    register_kind("wait", wait_job, queue="default", timeout=3600)
