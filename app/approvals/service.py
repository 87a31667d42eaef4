"""Approvals (审批): a workflow step that waits for sequential approvers.

The record service (`app.records.workflow.take`) hands a transition with an
`approval` that applies to `submit`: it resolves every level's approvers now
(a `by` path to the account of e.g. `owner.manager`, or every account holding a
`role`), keeping only accounts that may read the record and are not the
submitter, writes an `approval_request` and one `approval_step` per approver
and level, moves the record to the approval's `pending` state if it names one,
and notifies the first level. `decide` is an approver's approve or reject: the
last approval runs the step (`workflow.move`), a rejection (comment required)
puts the record back where it was. Every change is audited (`approval` entries,
plus the state's own update/transition entries) in the same transaction.

A record with an open request takes no other step and no edit until the
request is decided: what the approvers read is what they approve.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.i18n import N_, current_lang, gettext
from app.records import workflow
from app.records.service import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RecordService,
    records,
)
from app.schema.spec import ApprovalLevel, EntitySpec, TransitionSpec
from app.state import state

PENDING, WAITING, APPROVED, REJECTED, CLOSED, CANCELLED = (
    "pending", "waiting", "approved", "rejected", "closed", "cancelled")
DECISIONS = ("approve", "reject")
# Messages kept as msgids in notification rows; translated for each reader.
ASKS = N_("%(user)s asks you to approve: %(step)s — %(record)s.")
APPROVED_MSG = N_("Approved by %(user)s: %(step)s — %(record)s.")
REJECTED_MSG = N_("Rejected by %(user)s: %(step)s — %(record)s. Comment: %(comment)s")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def tables() -> tuple[sa.Table, sa.Table]:
    """(approval_request, approval_step)."""
    system = state().models.system
    return system["approval_request"], system["approval_step"]


def has_approvals(entity: EntitySpec) -> bool:
    """Whether any step of the entity's workflow needs approval."""
    wf = entity.workflow
    return wf is not None and any(t.approval is not None for t in wf.transitions)


# -- submitting ------------------------------------------------------------------


def open_request(session: Any, entity: str, record_id: int) -> Any | None:
    """The open (pending) request of a record, or None."""
    request, _ = tables()
    return session.execute(sa.select(request).where(
        request.c.entity == entity, request.c.record_id == record_id,
        request.c.status == PENDING).order_by(request.c.id.desc()).limit(1)).first()


def refuse_while_open(service: RecordService, obj: Any) -> None:
    """Raise Conflict when `obj` waits for an approval (no step, no edit until decided)."""
    if obj is None or getattr(obj, "id", None) is None or not has_approvals(service.entity):
        return
    with service.session.no_autoflush:
        found = open_request(service.session, service.entity.name, obj.id)
    if found is not None:
        service.session.rollback()
        raise Conflict(gettext(N_(
            "This record waits for approval; it cannot change until the approvers decide.")))


def cancel_for(service: RecordService, ids: list[int]) -> None:
    """Mark the open requests of deleted records `cancelled`, their steps `closed`."""
    if not ids or not has_approvals(service.entity):
        return
    request, step = tables()
    open_ids = sa.select(request.c.id).where(
        request.c.entity == service.entity.name, request.c.record_id.in_(ids),
        request.c.status == PENDING).scalar_subquery()
    found = list(service.session.execute(sa.select(request.c.id).where(
        request.c.id.in_(open_ids))).scalars())
    if not found:
        return
    service.session.execute(sa.update(step).where(
        step.c.request_id.in_(found), step.c.status.in_((PENDING, WAITING))).values(
        status=CLOSED))
    service.session.execute(sa.update(request).where(request.c.id.in_(found)).values(
        status=CANCELLED, decided_at=_now()))


def submitted_message(entity: EntitySpec, obj: Any) -> str | None:
    """What the show page says after a step was sent for approval (None: it was taken)."""
    if not has_approvals(entity):
        return None
    row = open_request(state().db.session, entity.name, obj.id)
    if row is None:
        return None
    _, step = tables()
    ids = state().db.session.execute(sa.select(step.c.approver_id).where(
        step.c.request_id == row.id, step.c.level == row.level,
        step.c.status == PENDING)).scalars()
    return gettext(N_("Sent for approval: level %(level)s of %(levels)s waits for %(who)s."),
                   level=row.level, levels=row.levels,
                   who=", ".join(sorted(user_names(ids).values())))


def needed(service: RecordService, obj: Any, t: TransitionSpec) -> bool:
    """Whether taking `t` on `obj` needs approval (its `when`, if any, holds)."""
    approval = t.approval
    if approval is None:
        return False
    return approval.when is None or workflow.holds(service, obj, approval.when)


def submit(service: RecordService, obj: Any, t: TransitionSpec, comment: str | None) -> Any:
    """Open an approval request for step `t` on `obj`; commit; return the record."""
    from app.audit import record_event

    approval, wf = t.approval, service.entity.workflow
    assert approval is not None and wf is not None
    if service.user is None:
        raise Forbidden(gettext(N_("Only a signed-in user can submit a request for approval.")))
    levels = [approvers(service, obj, level) for level in approval.levels]
    lang = current_lang()
    for number, (level, found) in enumerate(zip(approval.levels, levels, strict=True), 1):
        if not found:
            raise Invalid(gettext(
                N_("No one can approve level %(level)s (%(rule)s) of this record: ask an "
                   "admin to set up who approves."), level=number,
                rule=rule_text(level, lang, service.entity)))
    request, step = tables()
    old = getattr(obj, wf.field)
    title = workflow.title_of(service.entity, obj)
    request_id = service.session.execute(sa.insert(request).values(
        entity=service.entity.name, record_id=obj.id, record_title=(title or "")[:255] or None,
        transition=t.name, from_state=old, to_state=t.to,
        pending_state=approval.pending, submitted_by=service.user.id,
        submitted_at=_now(), comment=comment, level=1, levels=len(levels),
        status=PENDING)).inserted_primary_key[0]
    service.session.execute(sa.insert(step), [
        {"request_id": request_id, "level": number, "approver_id": user_id,
         "rule": rule_key(level), "status": PENDING if number == 1 else WAITING}
        for number, (level, found) in enumerate(zip(approval.levels, levels, strict=True), 1)
        for user_id in found])
    if approval.pending:
        workflow.move(service, obj, approval.pending,
                      {"transition": t.name, "from": old, "to": approval.pending,
                       "comment": comment, "approval": request_id})
    record_event("approval", entity=service.entity.name, record_id=obj.id, title=title,
                 detail={"event": "submitted", "request": request_id, "transition": t.name,
                         "level": 1, "levels": len(levels), "comment": comment},
                 session=service.session)
    _notify(service.session, levels[0], ASKS, service.user, t, obj, service.entity)
    return service.commit(obj, check_visible=False)


def rule_key(level: ApprovalLevel) -> str:
    """How a level is stored on its steps: `by:owner.manager` or `role:manager`."""
    return f"by:{level.by}" if level.by else f"role:{level.role}"


def _entity(name: str) -> EntitySpec | None:
    spec = state().spec
    return spec.entity(name) if name in {e.name for e in spec.entities} else None


def rule_text(level: ApprovalLevel | str, lang: str, entity: EntitySpec | None = None) -> str:
    """A level's rule in words: the path's field labels, or the role's label."""
    key = rule_key(level) if isinstance(level, ApprovalLevel) else (level or "")
    kind, _, name = key.partition(":")
    if kind == "role":
        role = next((r for r in state().spec.roles if r.name == name), None)
        return gettext(N_("role %(role)s"), role=role.label.get(lang) if role else name)
    return path_text(name, lang, entity)


def path_text(path: str, lang: str, entity: EntitySpec | None = None) -> str:
    """`owner.manager` in words (销售负责人 › 直属上级) where the fields are known."""
    from app.schema.conditions import field_of

    words, spec = [], state().spec
    for part in path.split("."):
        f = field_of(entity, part) if entity is not None else None
        words.append(f.label.get(lang) if f is not None else part)
        entity = spec.entity(f.to) if f is not None and f.to else None
    return " › ".join(words)


def approvers(service: RecordService, obj: Any, level: ApprovalLevel) -> list[int]:
    """The accounts that approve `level` of `obj`: active, able to read it, not the submitter."""
    if level.by:
        found = _account_at(service.entity, obj, level.by)
        candidates = [found] if found is not None else []
    else:
        candidates = _role_holders(level.role or "")
    submitter = service.user.id if service.user is not None else None
    sm = current_app.appbuilder.sm  # type: ignore[attr-defined]
    result = []
    for user_id in candidates:
        if user_id == submitter:
            continue
        user = sm.get_user_by_id(user_id)
        if user is None or not user.active:
            continue
        reader = records(service.entity.name, user)
        if reader.can("read") and reader.reachable_ids([obj.id]):
            result.append(user_id)
    return sorted(set(result))


def _account_at(entity: EntitySpec, obj: Any, path: str) -> int | None:
    """Follow relation `path` from `obj` to a login account id (a user field at the end)."""
    spec = state().spec
    current_entity, current = entity, obj
    parts = path.split(".")
    for i, part in enumerate(parts):
        if current is None:
            return None
        if part in ("created_by", "updated_by"):
            return getattr(current, part, None)
        f = current_entity.field(part)
        if f.type == "user":
            return getattr(current, f.column_name, None)
        current = getattr(current, part, None)
        current_entity = spec.entity(f.to)  # type: ignore[arg-type]
        if i == len(parts) - 1 and current is not None:
            user_field = current_entity.user_field
            return getattr(current, user_field.column_name) if user_field else None
    return None


def _role_holders(role: str) -> list[int]:
    sm = current_app.appbuilder.sm  # type: ignore[attr-defined]
    user_model, role_model = sm.user_model, sm.role_model
    stmt = (sa.select(user_model.id).join(user_model.roles)
            .where(role_model.name == role, user_model.active.is_(True)))
    return list(state().db.session.execute(stmt).scalars())


# -- deciding --------------------------------------------------------------------


def decide(request_id: Any, decision: str, comment: str | None, user: Any) -> dict[str, Any]:
    """Approve or reject request `request_id` as `user`; commit; return the request's view.

    Refused (and nothing written) unless `user` is a pending approver of its
    current level, is not its submitter, and may read the record now.
    """
    from app.audit import record_event

    session = state().db.session
    try:
        row = _locked_request(session, request_id)
        step_row = _my_step(session, row, user)
        service = records(row.entity, user)
        obj = service.get(row.record_id, "read", lock=True)
        comment = (comment or "").strip() or None
        if decision == "reject" and comment is None:
            raise Invalid(gettext(N_("Say why you reject it: a comment is required.")),
                          {"comment": [gettext(N_("A rejection needs a comment."))]})
        request, step = tables()
        now = _now()
        session.execute(sa.update(step).where(step.c.id == step_row.id).values(
            status=APPROVED if decision == "approve" else REJECTED, decided_at=now,
            comment=comment))
        session.execute(sa.update(step).where(
            step.c.request_id == row.id, step.c.level == row.level, step.c.status == PENDING
        ).values(status=CLOSED))
        outcome = _advance(service, obj, row, decision, comment, user)
        record_event("approval", entity=row.entity, record_id=row.record_id,
                     title=row.record_title,
                     detail={"event": decision, "request": row.id, "level": row.level,
                             "levels": row.levels, "comment": comment, "outcome": outcome},
                     session=session)
        service.commit(obj, check_visible=False)
    except Exception:
        session.rollback()
        raise
    return request_view(get_request(row.id), current_lang())


def _locked_request(session: Any, request_id: Any) -> Any:
    """The request row, locked until the transaction ends (one decision at a time)."""
    request, _ = tables()
    try:
        pk = int(request_id)
    except (TypeError, ValueError):
        raise NotFound(gettext(N_("No such approval request."))) from None
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql(
            'UPDATE "approval_request" SET id = id WHERE 0')
    row = session.execute(sa.select(request).where(request.c.id == pk)
                          .with_for_update()).first()
    if row is None:
        raise NotFound(gettext(N_("No such approval request.")))
    if row.status != PENDING:
        raise Conflict(gettext(N_("This request was already decided.")))
    return row


def _my_step(session: Any, row: Any, user: Any) -> Any:
    """The user's pending step at the request's current level, or raise Forbidden."""
    if user is None:
        raise Forbidden(gettext(N_("Only a signed-in user can decide a request.")))
    if user.id == row.submitted_by:
        raise Forbidden(gettext(N_("You cannot approve or reject your own request.")))
    _, step = tables()
    found = session.execute(sa.select(step).where(
        step.c.request_id == row.id, step.c.level == row.level, step.c.approver_id == user.id,
        step.c.status == PENDING)).first()
    if found is None:
        raise Forbidden(gettext(N_(
            "You are not an approver of this request at its current level.")))
    return found


def _advance(service: RecordService, obj: Any, row: Any, decision: str, comment: str | None,
             user: Any) -> str:
    """Move the request on after a decision; return its outcome (next/approved/rejected)."""
    request, step = tables()
    session = service.session
    entity = service.entity
    t = entity.workflow.transition(row.transition) if entity.workflow else None
    label = t.label.get("zh" if state().spec.default_locale == "zh" else "en") if t \
        else row.transition
    if decision == "reject":
        session.execute(sa.update(request).where(request.c.id == row.id).values(
            status=REJECTED, decided_at=_now()))
        if row.pending_state and _state(service, obj) == row.pending_state:
            workflow.move(service, obj, row.from_state, {
                "transition": row.transition, "from": row.pending_state, "to": row.from_state,
                "comment": comment, "approval": row.id, "decision": "reject"})
        _notify_plain(session, [row.submitted_by], REJECTED_MSG, user, label, row,
                      comment=comment or "")
        return "rejected"
    if row.level < row.levels:
        nxt = row.level + 1
        session.execute(sa.update(request).where(request.c.id == row.id).values(level=nxt))
        others = session.execute(sa.select(sa.func.count()).select_from(step).where(
            step.c.request_id == row.id, step.c.level == nxt,
            step.c.approver_id != user.id)).scalar_one()
        opened = step.c.approver_id != user.id if others else sa.true()
        session.execute(sa.update(step).where(
            step.c.request_id == row.id, step.c.level == nxt, opened).values(status=PENDING))
        waiting = list(session.execute(sa.select(step.c.approver_id).where(
            step.c.request_id == row.id, step.c.level == nxt,
            step.c.status == PENDING)).scalars())
        _notify_plain(session, waiting, ASKS, user, label, row, by_submitter=True)
        return "next"
    session.execute(sa.update(request).where(request.c.id == row.id).values(
        status=APPROVED, decided_at=_now()))
    workflow.move(service, obj, row.to_state, {
        "transition": row.transition, "from": _state(service, obj), "to": row.to_state,
        "comment": comment, "approval": row.id, "decision": "approve"})
    _notify_plain(session, [row.submitted_by], APPROVED_MSG, user, label, row)
    return "approved"


def _state(service: RecordService, obj: Any) -> Any:
    wf = service.entity.workflow
    return getattr(obj, wf.field) if wf is not None else None


# -- notifying -------------------------------------------------------------------


def _user_name(user: Any) -> str:
    if user is None:
        return ""
    full = f"{user.first_name or ''} {user.last_name or ''}".strip()
    return full or user.username


def _notify(session: Any, recipients: list[int], message: str, actor: Any,
            t: TransitionSpec, obj: Any, entity: EntitySpec) -> None:
    from app.notify import notify

    label = t.label.get("zh" if state().spec.default_locale == "zh" else "en")
    notify(session, recipients, message, {"user": _user_name(actor), "step": label},
           entity=entity.name, record_id=obj.id)


def _notify_plain(session: Any, recipients: list[int], message: str, actor: Any, label: str,
                  row: Any, comment: str = "", by_submitter: bool = False) -> None:
    """Notify about request `row`; `by_submitter` names the submitter instead of `actor`."""
    from app.notify import notify

    if by_submitter:
        actor = current_app.appbuilder.sm.get_user_by_id(row.submitted_by)  # type: ignore[attr-defined]
    notify(session, recipients, message,
           {"user": _user_name(actor), "step": label, "comment": comment},
           entity=row.entity, record_id=row.record_id)


# -- reading ---------------------------------------------------------------------


def get_request(request_id: int) -> Any:
    request, _ = tables()
    return state().db.session.execute(
        sa.select(request).where(request.c.id == request_id)).first()


def pending_count(user_id: int | None) -> int:
    """How many requests wait for `user_id` (the badge): one indexed statement."""
    if user_id is None:
        return 0
    _, step = tables()
    return state().db.session.execute(
        sa.select(sa.func.count()).select_from(step).where(
            step.c.approver_id == user_id, step.c.status == PENDING)).scalar_one()


def inbox(user_id: int, lang: str, limit: int = 200) -> list[dict[str, Any]]:
    """The requests waiting for `user_id`, oldest first."""
    request, step = tables()
    rows = state().db.session.execute(
        sa.select(request).join(step, step.c.request_id == request.c.id)
        .where(step.c.approver_id == user_id, step.c.status == PENDING,
               request.c.status == PENDING)
        .order_by(request.c.submitted_at, request.c.id).limit(limit)).all()
    names = user_names(r.submitted_by for r in rows)
    return [request_view(r, lang, names) for r in rows]


def submitted(user_id: int, lang: str, limit: int = 50) -> list[dict[str, Any]]:
    """The requests `user_id` submitted, newest first."""
    request, _ = tables()
    rows = state().db.session.execute(
        sa.select(request).where(request.c.submitted_by == user_id)
        .order_by(request.c.id.desc()).limit(limit)).all()
    names = user_names(r.submitted_by for r in rows)
    return [request_view(r, lang, names) for r in rows]


STATUS_LABELS = {PENDING: N_("Pending"), APPROVED: N_("Approved"), REJECTED: N_("Rejected"),
                 WAITING: N_("Waiting"), CLOSED: N_("Closed"),
                 CANCELLED: N_("Cancelled (record deleted)")}


def user_names(ids: Any) -> dict[int, str]:
    """{user id: display name} of accounts, in one query."""
    wanted = sorted({int(i) for i in ids if i is not None})
    if not wanted:
        return {}
    model = current_app.appbuilder.sm.user_model  # type: ignore[attr-defined]
    rows = state().db.session.execute(sa.select(
        model.id, model.first_name, model.last_name, model.username).where(
        model.id.in_(wanted))).all()
    return {r.id: f"{r.first_name or ''} {r.last_name or ''}".strip() or r.username
            for r in rows}


def request_view(row: Any, lang: str, names: dict[int, str] | None = None) -> dict[str, Any]:
    """A request as the inbox, the API and the history show it (`names`: preloaded users)."""
    entity = _entity(row.entity)
    t = entity.workflow.transition(row.transition) if entity and entity.workflow else None
    if names is None:
        names = user_names([row.submitted_by])
    return {
        "id": row.id,
        "entity": row.entity,
        "entity_label": entity.label.get(lang) if entity else row.entity,
        "record_id": row.record_id,
        "record_title": row.record_title or f"#{row.record_id}",
        "transition": row.transition,
        "step_label": t.label.get(lang) if t else row.transition,
        "submitted_by": row.submitted_by,
        "submitter": names.get(row.submitted_by, f"#{row.submitted_by}"),
        "submitted_at": row.submitted_at.isoformat(timespec="minutes")
        if row.submitted_at else None,
        "comment": row.comment,
        "level": row.level,
        "levels": row.levels,
        "status": row.status,
        "status_label": gettext(STATUS_LABELS.get(row.status, row.status)),
        "decided_at": row.decided_at.isoformat(timespec="minutes") if row.decided_at else None,
        "submitted_local": _local(row.submitted_at),
    }


def _local(value: dt.datetime | None) -> str:
    """A stored UTC time as people read it: the app's time zone, to the minute."""
    from app.records.display import format_datetime

    return format_datetime(value) if value is not None else ""


def history(entity: str, record_id: int, lang: str) -> list[dict[str, Any]]:
    """Every request of a record with its decisions (who, when, level, decision, comment)."""
    request, step = tables()
    session = state().db.session
    rows = session.execute(sa.select(request).where(
        request.c.entity == entity, request.c.record_id == record_id)
        .order_by(request.c.id)).all()
    if not rows:
        return []
    steps = session.execute(sa.select(step).where(
        step.c.request_id.in_([r.id for r in rows]),
        step.c.status.in_((APPROVED, REJECTED))).order_by(step.c.decided_at, step.c.id)).all()
    names = user_names([r.submitted_by for r in rows] + [s.approver_id for s in steps])
    out = []
    for row in rows:
        view = request_view(row, lang, names)
        view["decisions"] = [{
            "level": s.level, "rule": rule_text(s.rule, lang, _entity(entity)),
            "approver": names.get(s.approver_id, f"#{s.approver_id}"),
            "decision": s.status, "decision_label": gettext(STATUS_LABELS[s.status]),
            "at": s.decided_at.isoformat(timespec="minutes") if s.decided_at else None,
            "at_local": _local(s.decided_at),
            "comment": s.comment} for s in steps if s.request_id == row.id]
        out.append(view)
    return out
