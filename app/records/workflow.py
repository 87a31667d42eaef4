"""Workflows (业务流程): the state field of an entity moves only by its transitions.

The record service calls these: a new record starts at the workflow's `initial`
state whatever the writer sent; an edit that changes the state field is refused
(naming the steps that exist); `take` runs one transition (状态流转) after the
checks the spec names: role, `from` state, `requires` fields, `when`, comment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm.exc import StaleDataError

from app.i18n import N_, current_lang, gettext
from app.records.scope import ScopeCompiler, is_admin
from app.schema.spec import Condition, EntitySpec, TransitionSpec, WorkflowSpec

if TYPE_CHECKING:
    from app.records.service import RecordService


def start(entity: EntitySpec, obj: Any) -> None:
    """Put a new record at the workflow's initial state (whatever the writer set)."""
    if entity.workflow is not None:
        setattr(obj, entity.workflow.field, entity.workflow.initial)


def stored_state(service: RecordService, obj: Any) -> Any:
    """The state of `obj` as the database holds it (before this write)."""
    wf = service.entity.workflow
    assert wf is not None
    history = sa.inspect(obj).attrs[wf.field].history
    if history.deleted:
        return history.deleted[0]
    if not history.added:
        return getattr(obj, wf.field)
    with service.session.no_autoflush:
        return service.session.execute(
            sa.select(service.table.c[wf.field]).where(service.table.c.id == obj.id)).scalar()


def refuse_state_change(service: RecordService, obj: Any) -> None:
    """Raise Invalid when an edit of `obj` changes its workflow state."""
    wf = service.entity.workflow
    if wf is None or not sa.inspect(obj).attrs[wf.field].history.added:
        return
    old = stored_state(service, obj)
    if old == getattr(obj, wf.field):
        return
    from app.records.service import Invalid

    message = state_change_message(service.entity, old)
    raise Invalid(message, {wf.field: [message]})


def refuse_while_approving(service: RecordService, obj: Any) -> None:
    """Raise Conflict when `obj` waits for an approval: approvers decide what they read."""
    from app.approvals import service as approvals

    approvals.refuse_while_open(service, obj)


def forget_approvals(service: RecordService, ids: list[int]) -> None:
    """Close the open approval requests of records being deleted (no orphan in an inbox)."""
    from app.approvals import service as approvals

    approvals.cancel_for(service, ids)


def state_change_message(entity: EntitySpec, old: Any) -> str:
    """The translated refusal of a direct state change, naming the steps there are."""
    wf = entity.workflow
    assert wf is not None
    lang = current_lang()
    field = entity.field(wf.field)
    steps = wf.leaving(old) or wf.transitions
    return gettext(
        N_("%(field)s changes only through its workflow steps (%(steps)s), not by editing "
           "the record."),
        field=field.label.get(lang), steps=", ".join(t.label.get(lang) for t in steps))


def bypasses(service: RecordService) -> bool:
    """Admin and the CLI may set states directly in bulk (an import that migrates data)."""
    return service.user is None or is_admin(service.user)


def allowed(service: RecordService, t: TransitionSpec) -> bool:
    """Whether the user's roles may take `t` (no `roles`: anyone who may update)."""
    if not service.can("update"):
        return False
    if not t.roles or service.user is None or is_admin(service.user):
        return True
    return any(r.name in t.roles for r in service.user.roles or [])


def available(service: RecordService, obj: Any) -> list[TransitionSpec]:
    """The transitions the user may offer on `obj` from its current state."""
    from app.approvals import service as approvals

    wf = service.entity.workflow
    if wf is None:
        return []
    if approvals.has_approvals(service.entity) and approvals.open_request(
            service.session, service.entity.name, obj.id) is not None:
        return []  # it waits for its approvers: no other step meanwhile
    return [t for t in wf.leaving(getattr(obj, wf.field) or wf.initial) if allowed(service, t)]


def take(service: RecordService, obj: Any, name: str, comment: str | None = None,
         expected_version: int | None = None) -> Any:
    """Run transition `name` on a reachable record; commit; return the record.

    A transition with an `approval` that applies is not run but submitted
    (app/approvals): the record moves when its last approver agrees.
    """
    from app.approvals import service as approvals
    from app.records.service import Conflict, Forbidden, Invalid, NotFound, conflict_message

    service.require("update")
    wf: WorkflowSpec | None = service.entity.workflow
    t = wf.transition(name) if wf is not None else None
    if wf is None or t is None:
        raise NotFound(gettext(N_("No such workflow step.")))
    if not service.reachable_ids([obj.id]):
        raise NotFound(gettext(N_("No such record.")))
    if expected_version is not None and obj.version != expected_version:
        raise Conflict(conflict_message())
    lang = current_lang()
    field = service.entity.field(wf.field)
    # A record from before its entity had a workflow has no state yet: it is at `initial`.
    old = getattr(obj, wf.field) or wf.initial
    approvals.refuse_while_open(service, obj)
    if old not in t.sources:
        raise Conflict(gettext(
            N_("The step %(step)s does not apply: this record is %(state)s now."),
            step=t.label.get(lang), state=field.choice_label(old, lang)))
    if not allowed(service, t):
        raise Forbidden(gettext(N_("Your role may not take the step %(step)s."),
                                step=t.label.get(lang)))
    comment = (comment or "").strip() or None
    errors = _problems(service, obj, t, comment)
    if errors:
        message = next(iter(errors.values()))[0]
        raise Invalid(message, errors)
    if t.approval is not None and approvals.needed(service, obj, t):
        return approvals.submit(service, obj, t, comment)
    move(service, obj, t.to, {"transition": t.name, "from": old, "to": t.to,
                              "comment": comment})
    # The user reached the record before the step; a row rule on the state may
    # put it out of their reach after (a dispatcher hands a request on): allowed.
    return service.commit(obj, check_visible=False)


def _problems(service: RecordService, obj: Any, t: TransitionSpec, comment: str | None
              ) -> dict[str, list[str]]:
    """{field: [messages]} of what keeps `t` from being taken on `obj` (requires, comment, when)."""
    lang = current_lang()
    errors: dict[str, list[str]] = {}
    for required in t.requires:
        if getattr(obj, required) in (None, "", []):
            errors[required] = [gettext(
                N_("Fill in %(field)s before the step %(step)s."),
                field=service.entity.field(required).label.get(lang), step=t.label.get(lang))]
    if t.comment == "required" and comment is None:
        errors["comment"] = [gettext(N_("The step %(step)s needs a comment."),
                                     step=t.label.get(lang))]
    if not errors and t.when is not None and not holds(service, obj, t.when):
        errors["_record"] = [gettext(
            N_("The conditions of the step %(step)s do not hold for this record."),
            step=t.label.get(lang))]
    return errors


def move(service: RecordService, obj: Any, to: str, detail: dict[str, Any]) -> None:
    """Set the state of `obj` to `to`, flush, and add the `transition` audit entry.

    The caller has checked the step (or its approval) and commits; this is the
    one place a workflow state is written.
    """
    from app.audit import record_event
    from app.records.service import Conflict, conflict_message

    wf = service.entity.workflow
    assert wf is not None
    setattr(obj, wf.field, to)
    try:
        service.session.flush()  # the update's own audit entry comes first
    except StaleDataError:
        service.session.rollback()
        raise Conflict(conflict_message()) from None
    record_event("transition", entity=service.entity.name, record_id=obj.id,
                 title=title_of(service.entity, obj), detail=detail, session=service.session)


def holds(service: RecordService, obj: Any, condition: Condition) -> bool:
    """Whether `condition` (a `when`) holds for the record's stored row."""
    user_id = service.user.id if service.user is not None else 0
    clause = ScopeCompiler(service.spec, user_id).compile(service.entity, condition)
    stmt = sa.select(service.table.c.id).where(service.table.c.id == obj.id, clause)
    with service.session.no_autoflush:
        return service.session.execute(stmt).first() is not None


def title_of(entity: EntitySpec, obj: Any) -> str | None:
    """The record's title for logs and inboxes (None where it is `id` or sensitive)."""
    if not entity.title or entity.title == "id" or entity.field(entity.title).sensitive:
        return None
    value = getattr(obj, entity.title, None)
    return None if value is None else str(value)
