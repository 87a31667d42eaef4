"""Running verification: directly (CLI) or as a job from the auditor's page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.audit import chain
from app.i18n import current_lang
from app.jobs import REGISTRY, enqueue, register_kind
from app.state import state


@dataclass
class VerifyOutcome:
    """What the verify button did: started a job, or verified right away."""

    job_id: Any = None
    job_url: str | None = None
    result: chain.VerifyResult | None = None


def run_verify(expect_head: str | None = None,
               progress: Callable[[int, int], None] | None = None,
               record: bool = True) -> chain.VerifyResult:
    """Verify the chain of the current app's database; record the outcome in the log."""
    st = state()
    with st.db.engine.connect() as conn:
        result = chain.verify(conn, st.models.system["audit_head"],
                              st.models.system["audit_log"], expect_head, progress)
    if record:
        from app.audit.capture import record_event

        detail: dict[str, Any] = {"ok": result.ok, "entries": result.count,
                                  "head_id": result.head_id, "head_hash": result.head_hash}
        if result.problem is not None:
            detail.update(problem=result.problem.reason, entry=result.problem.entry_id)
        if expect_head:
            detail["expected_head"] = expect_head
        record_event("audit_verify", entity="audit_log", detail=detail)
    return result


class VerifyFailed(Exception):
    """The chain does not verify (a job's failure, with a translatable message)."""

    def __init__(self, problem: chain.Problem) -> None:
        super().__init__(problem.message)
        self.message = problem.msgid
        self.params = problem.params


def verify_job(ctx: Any, expect_head: str | None = None, **_: Any) -> dict[str, Any]:
    """Job body (kind `audit_verify`): verify with progress; fail naming the entry."""
    result = run_verify(expect_head, lambda done, total: ctx.progress(done, total))
    if result.problem is not None:
        raise VerifyFailed(result.problem)
    return {"counts": {"entries": result.count, "head_id": result.head_id},
            "message": result.head_hash}


def register_job_kind() -> bool:
    """Register the `audit_verify` job kind with the jobs service."""
    register_kind("audit_verify", verify_job, queue="default", timeout=4 * 3600)
    return True


def start_verify() -> VerifyOutcome:
    """Start verification as a job (progress on the jobs page), else verify right away."""
    if "audit_verify" in REGISTRY:
        run_id = enqueue("audit_verify", {"lang": current_lang()})
        return VerifyOutcome(job_id=run_id, job_url=_job_url(run_id))
    return VerifyOutcome(result=run_verify())


def _job_url(run_id: int) -> str | None:
    from flask import current_app

    for endpoint in ("JobRunView.show", "JobsView.show", "JobView.show"):
        if endpoint in current_app.view_functions:
            from flask import url_for

            return url_for(endpoint, pk=run_id)
    return "/jobs/list/" if any(r.rule.startswith("/jobs/") for r in
                                current_app.url_map.iter_rules()) else None
