"""Bulk actions on the selected rows of a list: a registry (批量操作).

The grid offers export selected, set a field and delete; other features add
theirs with `register_bulk_action` (e.g. app/approvals/bulk.py). Every record
is read and written through the record service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import flash, redirect, request, url_for

from app.i18n import N_, gettext
from app.records import RecordError, RecordService
from app.records.display import app_zone
from app.records.values import CellError, parse_input
from app.schema.spec import EntitySpec, FieldSpec
from app.state import state
from app.views.grid_filters import field_label


@dataclass(frozen=True)
class BulkAction:
    """An action on the selected rows of a list (a registry: other features add theirs).

    `permission` is the action the user needs on the entity (`delete`, `export`,
    `update`…); `run(service, ids)` does it and returns the response (a redirect
    back to the list after flashing a summary, or a download); `form` is a
    template partial with the extra inputs the action needs (or None);
    `available(service)` may hide it for an entity (e.g. one without a workflow).
    """

    name: str
    label: str
    icon: str
    permission: str
    run: Callable[[RecordService, list[int]], Any]
    form: str | None = None
    confirm: str | None = None
    available: Callable[[RecordService], bool] = lambda service: True
    order: int = 50


BULK_ACTIONS: dict[str, BulkAction] = {}


def register_bulk_action(action: BulkAction) -> None:
    """Add (or replace) a bulk action offered on every list where the user may take it."""
    BULK_ACTIONS[action.name] = action


def bulk_actions_for(service: RecordService) -> list[BulkAction]:
    return sorted((a for a in BULK_ACTIONS.values()
                   if service.can(a.permission) and a.available(service)),
                  key=lambda a: (a.order, a.name))


def back_to_list() -> Any:
    """Redirect to the list the bulk form came from (its filters kept), or the list itself."""
    back = request.form.get("next") or ""
    if back.startswith("/") and not back.startswith("//"):
        return redirect(back)
    return redirect(url_for(f"{_entity_from_path().class_name}View.list"))


def _entity_from_path() -> EntitySpec:
    return state().spec.entity(request.view_args["entity"])  # type: ignore[index]


def bulk_delete(service: RecordService, ids: list[int]) -> Any:
    """Delete the selected records in one transaction (all or none)."""
    objs = [service.get(pk, "delete") for pk in ids]
    try:
        count = service.delete_many(objs)
    except RecordError as exc:
        flash(exc.message, "danger")
    else:
        flash(gettext(N_("Deleted %(count)s records."), count=count), "success")
    return back_to_list()


def bulk_export(service: RecordService, ids: list[int]) -> Any:
    """Download the selected records through the one exporter (audited there)."""
    fmt = "xlsx" if request.form.get("format") == "xlsx" else "csv"
    export = url_for(f"{service.entity.class_name}ViewIO.export")
    return redirect(f"{export}?{urlencode({'f_id': ','.join(map(str, ids)), 'format': fmt})}")


def settable_fields(service: RecordService) -> list[FieldSpec]:
    """Fields a bulk "set a field" may change: editable, not the workflow's state,
    not sensitive for a user who sees them masked."""
    wf = service.entity.workflow
    return [f for f in service.writable()
            if not (wf and f.name == wf.field) and not f.encrypted
            and (not f.sensitive or service.sees_sensitive)]


def read_bulk_value(service: RecordService, f: FieldSpec) -> Any:
    """The value the bulk form sent for `f`, as the record service takes it."""
    if f.is_many:
        return [int(v) for v in request.form.getlist("value") if v.strip().isdigit()]
    raw = request.form.get("value", "")
    if f.is_relation or f.type == "user":
        raw = raw.strip()
        if raw and not raw.isdigit():
            raise CellError(N_("Not a valid record id."))
        return int(raw) if raw else None
    return parse_input(raw, f, zone=app_zone())  # typed by a person: the app's time zone


def bulk_set_field(service: RecordService, ids: list[int]) -> Any:
    """Set one field on every selected record, each through `update` (validation,
    workflow guard, row rule, version, audit); flash what was and was not updated."""
    name = request.form.get("field", "")
    f = next((x for x in settable_fields(service) if x.name == name), None)
    if f is None:
        flash(gettext(N_("Choose a field that you may change.")), "danger")
        return back_to_list()
    try:
        value = read_bulk_value(service, f)
    except CellError as exc:
        flash(f"{field_label(f)}: {gettext(exc.message, **exc.params)}", "danger")
        return back_to_list()
    summary = set_field_on(service, ids, f.name, value)
    flash(summary_text(summary), "success" if not summary["refused"] else "warning")
    return back_to_list()


def set_field_on(service: RecordService, ids: list[int], name: str, value: Any
                 ) -> dict[str, Any]:
    """Write `name` = `value` on each record `ids` through the service, one by one.

    Returns {"updated": n, "refused": {id: reason}}; a refused record does not
    stop the others.
    """
    updated, refused = 0, {}
    for pk in ids:
        try:
            obj = service.get(pk, "update", lock=True)
            service.update(obj, {name: value})
        except RecordError as exc:
            service.session.rollback()
            refused[pk] = exc.message
        else:
            updated += 1
    return {"updated": updated, "refused": refused}


def summary_text(summary: dict[str, Any]) -> str:
    """"Updated 12 records, 2 not updated: #3 reason; #9 reason" (the first five reasons)."""
    refused = summary["refused"]
    if not refused:
        return gettext(N_("Updated %(count)s records."), count=summary["updated"])
    reasons = "; ".join(f"#{pk} {reason}" for pk, reason in list(refused.items())[:5])
    return gettext(N_("Updated %(count)s records, %(refused)s not updated: %(reasons)s"),
                   count=summary["updated"], refused=len(refused), reasons=reasons)


register_bulk_action(BulkAction("export", N_("Export selected"), "fa-download", "export",
                                bulk_export, form="grid/_bulk_export.html", order=10))
register_bulk_action(BulkAction("set_field", N_("Set a field"), "fa-pencil", "update",
                                bulk_set_field, form="grid/_bulk_set_field.html", order=20,
                                available=lambda s: bool(settable_fields(s))))
register_bulk_action(BulkAction("delete", N_("Delete"), "fa-trash", "delete", bulk_delete,
                                confirm=N_("Delete all selected records?"), order=90))
