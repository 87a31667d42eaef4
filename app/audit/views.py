"""The auditor's workspace: /audit/list/, detail with a readable diff, export, verify.

The view is read-only for everyone, Admin included: it declares only `read`
and `export` permissions and does not expose add, edit, delete or any action.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import ModelView, expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access
from flask_appbuilder.urltools import get_filter_args
from flask_babel import LazyString

from app.i18n import N_, current_lang, gettext
from app.state import state

ACTIONS = {
    "create": N_("Created"),
    "update": N_("Updated"),
    "delete": N_("Deleted"),
    "login": N_("Signed in"),
    "login_failed": N_("Failed sign-in"),
    "logout": N_("Signed out"),
    "session_ended": N_("Session ended"),
    "mfa_enabled": N_("Two-factor sign-in on"),
    "mfa_disabled": N_("Two-factor sign-in off"),
    "mfa_recovery_codes": N_("New recovery codes"),
    "import": N_("Import"),
    "export": N_("Export"),
    "backup": N_("Backup"),
    "restore": N_("Restore"),
    "schema_apply": N_("Schema applied"),
    "audit_verify": N_("Audit log verified"),
    "transition": N_("Workflow step"),
    "approval": N_("Approval"),
    "erase": N_("Erased (personal data destroyed)"),
    "retention": N_("Retention run"),
    "retention_confirm": N_("Retention rule confirmed"),
}
SOURCES = {"ui": N_("Web"), "api": N_("API"), "cli": N_("Command line"), "job": N_("Job"),
           "system": N_("System")}
SYSTEM_LABELS = {
    "ab_user": N_("User account"),
    "ab_role": N_("Role"),
    "audit_log": N_("Audit log"),
    "username": N_("User name"),
    "first_name": N_("First name"),
    "last_name": N_("Last name"),
    "email": N_("Email"),
    "active": N_("Active"),
    "password": N_("Password"),
    "roles": N_("Roles"),
    "name": N_("Name"),
    "permissions": N_("Permissions"),
}
COLUMNS = {
    "id": N_("No."),
    "created_at": N_("Time (UTC)"),
    "actor_id": N_("User ID"),
    "actor_name": N_("User"),
    "source": N_("Source"),
    "client_ip": N_("Client IP"),
    "request_id": N_("Request ID"),
    "action": N_("Action"),
    "entity": N_("Entity"),
    "record_id": N_("Record"),
    "record_title": N_("Title"),
    "changes": N_("Changes"),
    "before": N_("Before"),
    "after": N_("After"),
    "detail": N_("Detail"),
    "prev_hash": N_("Previous hash"),
    "hash": N_("Hash"),
}
EXPORT_COLUMNS = ("id", "created_at", "actor_id", "actor_name", "source", "client_ip",
                  "request_id", "action", "entity", "record_id", "record_title", "before",
                  "after", "detail", "prev_hash", "hash")


def _lazy(message: str) -> LazyString:
    return LazyString(lambda: gettext(message))


def action_label(action: str | None) -> str:
    """Return the action in the current language."""
    return gettext(ACTIONS[action]) if action in ACTIONS else (action or "")


def entity_label(entity: str | None) -> str:
    """Return the schema label (or system name) of an entity in the current language."""
    if not entity:
        return ""
    spec = state().spec
    for e in spec.entities:
        if e.name == entity:
            return e.label.get(current_lang())
    return gettext(SYSTEM_LABELS[entity]) if entity in SYSTEM_LABELS else entity


def _display(value: Any, field: Any) -> str:
    """Return a diff value as text: enum labels, Yes/No, related titles."""
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(_display(v, field) for v in value) or "—"
    if isinstance(value, dict):
        title = value.get("title") or ""
        return f"{title} (#{value.get('id')})" if value.get("id") is not None else title
    if isinstance(value, bool):
        return gettext(N_("Yes")) if value else gettext(N_("No"))
    if field is not None and field.type == "enum":
        return field.choice_label(value, current_lang())
    return str(value)


def diff_rows(entity: str | None, changes_text: str | None) -> list[dict[str, str]]:
    """Return the diff of an entry as rows {field, before, after} in the current language."""
    if not changes_text:
        return []
    try:
        changes = json.loads(changes_text)
    except ValueError:
        return [{"field": "", "before": "", "after": changes_text}]
    spec = next((e for e in state().spec.entities if e.name == entity), None)
    rows = []
    for name, change in changes.items():
        field = spec.field(name) if spec is not None and spec.has_field(name) else None
        if field is not None:
            label = field.label.get(current_lang())
        else:
            label = gettext(SYSTEM_LABELS[name]) if name in SYSTEM_LABELS else name
        if "added" in change:
            rows.append({
                "field": label,
                "before": gettext(N_("Removed: %(items)s"),
                                  items=_display(change.get("removed"), field)),
                "after": gettext(N_("Added: %(items)s"),
                                 items=_display(change.get("added"), field)),
            })
            continue
        if change.get("sealed") or change.get("erased"):
            from app.privacy.views import sealed_diff_row

            rows.append(sealed_diff_row(label, field, change))
            continue
        if change.get("encrypted") or change.get("changed"):
            rows.append({"field": label, "before": "", "after": gettext(N_("(changed)"))})
            continue
        rows.append({
            "field": label,
            "before": _display(change.get("before"), field),
            "after": _display(change.get("after"), field),
        })
    return rows


def detail_rows(detail_text: str | None) -> list[tuple[str, str]]:
    """Return an entry's detail as (key, value) rows."""
    if not detail_text:
        return []
    try:
        detail = json.loads(detail_text)
    except ValueError:
        return [("", detail_text)]
    if not isinstance(detail, dict):
        return [("", str(detail))]
    return [(k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
            for k, v in detail.items()]


def export_row(item: Any) -> list[Any]:
    """Return an entry's export cells; text a spreadsheet would run as a formula is defused.

    Every text cell of the log can carry what a stranger typed (a user name on a
    failed sign-in, a record title, a diff), so none may reach the auditor's
    spreadsheet as a live formula.
    """
    from app.io.importer import neutralise

    values = []
    words = export_words(item)
    for c in EXPORT_COLUMNS:
        v = words[c] if c in words else getattr(item, c)
        values.append(v.strftime("%Y-%m-%d %H:%M:%S") if c == "created_at" else neutralise(v))
    return values


def export_words(item: Any) -> dict[str, str]:
    """The export's cells a person reads: action, entity and source by name, the diff
    as a before and an after column ("字段: 值" lines), the detail as "key: value" lines."""
    diff = diff_rows(item.entity, item.changes)
    return {
        "action": action_label(item.action),
        "entity": entity_label(item.entity),
        "record_title": item.title_text,
        "source": gettext(SOURCES[item.source]) if item.source in SOURCES else item.source,
        "before": "" if item.action == "create" else "\n".join(
            f"{r['field']}: {r['before']}" for r in diff if r["before"]),
        "after": "" if item.action == "delete" else "\n".join(
            f"{r['field']}: {r['after']}" for r in diff if r["after"]),
        "detail": "\n".join(f"{k}: {v}" for k, v in detail_rows(item.detail)),
    }


def list_args() -> dict[str, list[str]]:
    """Return the list's active filters, search and order (`_flt_*`, `q`, `_oc_*`, `_od_*`)."""
    return {k: request.args.getlist(k) for k in sorted(request.args)
            if k == "q" or k.startswith(("_flt_", "_oc_", "_od_"))}


class AuditEntryBase:
    """An audit_log row, mapped for the auditor's views (read-only)."""

    def __str__(self) -> str:
        return f"#{getattr(self, 'id', '?')}"

    @property
    def title_text(self) -> str:
        """The record's title as people read it: a role by its YAML label, not its key."""
        title = getattr(self, "record_title", None) or ""
        if getattr(self, "entity", None) == "ab_role" and title:
            from app.security.role_labels import role_label

            return role_label(title)
        return title


class AuditView(ModelView):
    """/audit/list/: filters, detail with the diff, CSV/XLSX export, verify."""

    route_base = "/audit"
    class_permission_name = "audit_log"
    base_permissions = ["can_read", "can_export"]
    method_permission_name = {
        "list": "read",
        "show": "read",
        "export": "export",
        "verify": "read",
        # Entries are append-only: these map to a permission no role holds, so
        # FAB shows no add/edit/delete buttons (the routes do not exist anyway).
        "add": "never",
        "edit": "never",
        "delete": "never",
        "action": "never",
        "action_post": "never",
        "download": "never",
    }
    list_template = "audit/list.html"
    show_template = "audit/show.html"
    list_columns = ["id", "created_at", "actor_name", "source", "action", "entity",
                    "record_id", "title_text"]
    show_columns = ["id", "created_at", "actor_name", "actor_id", "source", "client_ip",
                    "request_id", "action", "entity", "record_id", "record_title",
                    "prev_hash", "hash"]
    search_columns = ["actor_name", "actor_id", "action", "source", "entity", "record_id",
                      "record_title", "created_at", "client_ip", "request_id"]
    label_columns = {**{k: _lazy(v) for k, v in COLUMNS.items()},
                     "title_text": _lazy(COLUMNS["record_title"])}
    formatters_columns = {
        "action": action_label,
        "entity": entity_label,
        "source": lambda v: gettext(SOURCES[v]) if v in SOURCES else (v or ""),
        "record_id": lambda v: "—" if v is None else v,
        "actor_name": lambda v: v or "—",
    }
    base_order = ("id", "desc")
    page_size = 50
    list_title = _lazy(N_("Audit log"))
    show_title = _lazy(N_("Audit entry"))

    # No add, edit, delete, actions: these names shadow FAB's routes without exposing them.
    def add(self) -> Any:  # type: ignore[override]
        abort(404)

    def edit(self, pk: Any) -> Any:  # type: ignore[override]
        abort(404)

    def delete(self, pk: Any) -> Any:  # type: ignore[override]
        abort(404)

    def action(self, name: Any, pk: Any) -> Any:  # type: ignore[override]
        abort(404)

    def action_post(self) -> Any:  # type: ignore[override]
        abort(404)

    def download(self, filename: Any) -> Any:  # type: ignore[override]
        abort(404)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        item = self.datamodel.get(pk)
        if item is None:
            abort(404)
        widgets = self._show(pk)
        return self.render_template(
            self.show_template,
            pk=pk,
            title=self.show_title,
            widgets=widgets,
            related_views=[],
            entry=item,
            action_text=action_label(item.action),
            entity_text=entity_label(item.entity),
            diff=diff_rows(item.entity, item.changes),
            details=detail_rows(item.detail),
        )

    @expose("/export/<fmt>", methods=["GET"])
    @has_access
    def export(self, fmt: str) -> Any:
        """Download the filtered list as CSV or XLSX (oldest first)."""
        if fmt not in ("csv", "xlsx"):
            abort(404)
        get_filter_args(self._filters)
        query = self.datamodel.session.query(self.datamodel.obj)
        query = self.datamodel.apply_filters(query, self._filters)
        query = query.order_by(self.datamodel.obj.id)
        header = [gettext(COLUMNS[c]) for c in EXPORT_COLUMNS]
        rows = [export_row(item) for item in query.yield_per(1000)]
        from app.audit.capture import record_event

        record_event("export", entity="audit_log",
                     detail={"rows": len(rows), "format": fmt, "filters": list_args()})
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(header)
            writer.writerows(rows)
            data = ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: Excel reads UTF-8
            mimetype = "text/csv; charset=utf-8"
        else:
            from openpyxl import Workbook

            workbook = Workbook(write_only=True)
            sheet = workbook.create_sheet("audit_log")
            sheet.append(header)
            for values in rows:
                sheet.append(values)
            out = io.BytesIO()
            workbook.save(out)
            data = out.getvalue()
            mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return Response(data, mimetype=mimetype, headers={
            "Content-Disposition": f"attachment; filename=audit_log.{fmt}"})

    @expose("/verify", methods=["POST"])
    @has_access
    def verify(self) -> Any:
        """Verify the whole chain (as a job when the job service is there) and report."""
        from app.audit.service import start_verify

        outcome = start_verify()
        if outcome.job_id is not None:
            flash(gettext(N_("Verification started as job %(id)s."), id=outcome.job_id), "info")
            return redirect(outcome.job_url or url_for(f"{type(self).__name__}.list"))
        result = outcome.result
        if result is not None and result.ok:
            flash(gettext(N_("The audit log is intact: %(count)s entries, head %(hash)s."),
                          count=result.count, hash=result.head_hash), "success")
        elif result is not None and result.problem is not None:
            flash(gettext(N_("The audit log does not verify: %(problem)s"),
                          problem=result.problem.message), "danger")
        return redirect(url_for(f"{type(self).__name__}.list"))


def map_audit_entry() -> type:
    """Map a class onto audit_log in the app's registry; return it."""
    st = state()
    cls = type("AuditEntry", (AuditEntryBase,), {})
    st.models.registry.map_imperatively(cls, st.models.system["audit_log"])
    current_app.extensions["schemadesk_audit_entry"] = cls
    return cls


def register(appbuilder: Any) -> Any:
    """Add the auditor's workspace to the app; return the view instance."""
    cls = map_audit_entry()
    view_cls = type("AuditView", (AuditView,), {
        "datamodel": SQLAInterface(cls, appbuilder.session),
    })
    return appbuilder.add_view(
        view_cls,
        "audit_log",
        label=_lazy(N_("Audit log")),
        icon="fa-history",
        category="Audit",
        category_label=_lazy(N_("Audit")),
    )
