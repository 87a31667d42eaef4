"""Bulk workflow steps (批量流转): the selected rows of a list take one step, each alone.

Registered in the list grid's bulk-action registry (app/views/grid.py). Every
record goes through `service.transition` (role, state, requires, when,
approval, audit), so a bulk step refuses exactly what the show page's button
would; the summary says per record what happened.
"""

from __future__ import annotations

from typing import Any

from flask import flash, request

from app.approvals import service as approvals
from app.i18n import N_, current_lang, gettext
from app.records.service import RecordError, RecordService, records


def steps_for(service: RecordService) -> list[Any]:
    """The workflow steps this user's role may take on the entity (from any state)."""
    from app.records import workflow

    wf = service.entity.workflow
    if wf is None or not service.can("update"):
        return []
    return [t for t in wf.transitions if workflow.allowed(service, t)]


def bulk_step_options(entity: str) -> list[tuple[str, str]]:
    """(name, label) of the steps the bulk form offers on `entity`."""
    lang = current_lang()
    return [(t.name, t.label.get(lang)) for t in steps_for(records(entity))]


def take_on(service: RecordService, ids: list[int], name: str, comment: str | None
            ) -> dict[str, Any]:
    """Take step `name` on each record; {"moved": n, "submitted": n, "refused": {id: why}}."""
    moved, submitted, refused = 0, 0, {}
    for pk in ids:
        try:
            obj = service.get(pk, "update", lock=True)
            service.transition(obj, name, comment)
        except RecordError as exc:
            service.session.rollback()
            refused[pk] = exc.message
            continue
        if approvals.open_request(service.session, service.entity.name, pk) is not None:
            submitted += 1
        else:
            moved += 1
    return {"moved": moved, "submitted": submitted, "refused": refused}


def summary_text(summary: dict[str, Any]) -> str:
    """The flash message of a bulk step: moved, sent for approval, refused (with reasons)."""
    text = gettext(N_("Step taken on %(count)s records."), count=summary["moved"])
    if summary["submitted"]:
        text += " " + gettext(N_("%(count)s sent for approval."), count=summary["submitted"])
    refused = summary["refused"]
    if refused:
        reasons = "; ".join(f"#{pk} {why}" for pk, why in list(refused.items())[:5])
        text += " " + gettext(N_("%(count)s refused: %(reasons)s"), count=len(refused),
                              reasons=reasons)
    return text


def bulk_transition(service: RecordService, ids: list[int]) -> Any:
    """The bulk action: the chosen step (form field `step`) on every selected record."""
    from app.views.grid import back_to_list

    name = request.form.get("step", "")
    if name not in {t.name for t in steps_for(service)}:
        flash(gettext(N_("Choose a workflow step that you may take.")), "danger")
        return back_to_list()
    summary = take_on(service, ids, name, request.form.get("comment"))
    flash(summary_text(summary), "success" if not summary["refused"] else "warning")
    return back_to_list()


def register(app: Any) -> None:
    """Add the bulk action to the grid's registry and its form's helper to templates."""
    from app.views.grid import BulkAction, register_bulk_action

    register_bulk_action(BulkAction(
        "transition", N_("Workflow step"), "fa-random", "update", bulk_transition,
        form="approvals/_bulk_transition.html", order=15,
        available=lambda s: bool(steps_for(s))))

    @app.context_processor
    def bulk_helpers() -> dict[str, Any]:
        return {"sd_bulk_steps": bulk_step_options}
