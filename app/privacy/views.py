"""Privacy pages: erase a record (admins, typed confirmation), the erase API, retention.

- `/privacy/erase/<entity>/<id>`: the record's title must be typed to erase it.
- `POST /api/v1/<entity>/<id>/erase` (`api_erase`): admins only.
- `/privacy/retention/`: each rule's preview ("312 customers will be anonymised on
  2026-12-01") and the runs; `/privacy/retention/<run>` a run's destruction
  report, `/privacy/retention/<run>.csv` the same as CSV. Readers of the audit
  log (auditors) may read these pages.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response, abort, current_app, flash, g, redirect, request
from flask_appbuilder import BaseView, expose

from app.i18n import N_, current_lang, gettext
from app.records import records
from app.records.masking import logged_value
from app.records.scope import is_admin
from app.records.service import RecordError
from app.state import state


def sealed_diff_row(label: str, field: Any, change: dict[str, Any]) -> dict[str, str]:
    """An audit diff row of a sealed field: masked clear text while the key lives, else erased."""
    from app.privacy.keys import erased_text, unseal

    if change.get("erased"):
        return {"field": label, "before": "", "after": gettext(N_("(erased)"))}

    def show(token: Any) -> str:
        if not token:
            return "—"
        text = unseal(token)
        if text is None:
            return erased_text()
        if field is not None and field.encrypted:
            return gettext(N_("(encrypted)"))
        return logged_value(field, text) if field is not None else "****"

    if "before" not in change:
        return {"field": label, "before": "", "after": gettext(N_("(changed)"))}
    return {"field": label, "before": show(change.get("before")),
            "after": show(change.get("after"))}


def api_erase(api: Any, pk: Any) -> Any:
    """The erase API call: admins only; answers what was done, without personal values."""
    if not is_admin(g.user):
        return api.response(403, message=gettext(N_("Only administrators may erase records.")))
    service = records(api.entity.name)
    try:
        obj = service.get(pk, "read")
        done = service.erase(obj)
    except RecordError as exc:
        return api._refused(exc)
    return api.response(200, result=done)


def can_erase(entity_name: str) -> bool:
    """Whether the erase button shows on a record page of `entity_name`."""
    try:
        entity = state().spec.entity(entity_name)
    except KeyError:
        return False
    return entity.subject is not None and is_admin(getattr(g, "user", None))


def _require(admin: bool = False) -> None:
    """Admins; or, for the retention pages, whoever may read the audit log (auditors).

    The view declares no permissions of its own (FAB would otherwise reconcile
    the audit log's permissions with this view's and drop `can_export`).
    """
    user = getattr(g, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        abort(redirect("/login/?next=" + request.path))
    if is_admin(user):
        return
    if admin or not current_app.appbuilder.sm.has_access("can_read", "audit_log"):
        abort(403)


def erasure_of(entity_name: str, pk: Any) -> dict[str, Any] | None:
    """The tombstone of an erased record (when, how), or None; for the record page."""
    import sqlalchemy as sa

    try:
        if state().spec.entity(entity_name).subject is None:
            return None
    except KeyError:
        return None
    table = state().models.system["subject_erasure"]
    with state().db.engine.connect() as conn:
        row = conn.execute(sa.select(table.c.mode, table.c.erased_at, table.c.rule).where(
            table.c.entity == entity_name, table.c.record_id == str(pk))
            .order_by(table.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


class PrivacyView(BaseView):
    """Erasure confirmation and the retention preview and reports."""

    route_base = "/privacy"
    default_view = "retention"

    @expose("/erase/<entity>/<int:pk>", methods=["GET", "POST"])
    def erase(self, entity: str, pk: int) -> Any:
        _require(admin=True)
        if not can_erase(entity):
            abort(403)
        service = records(entity)
        try:
            obj = service.get(pk, "read")
        except RecordError:
            abort(404)
        title = str(obj)
        if request.method == "POST":
            if (request.form.get("confirm") or "").strip() != title:
                flash(gettext(N_("Type the record's title exactly to erase it.")), "danger")
            else:
                try:
                    done = service.erase(obj)
                except RecordError as exc:
                    flash(exc.message, "danger")
                else:
                    flash(gettext(N_("Erased: %(count)d record(s), %(keys)d key(s) destroyed."),
                                  count=len(done["erased"]), keys=done["keys_destroyed"]),
                          "success")
                    return redirect(f"/{entity}/list/")
        spec = state().spec.entity(entity)
        return self.render_template(
            "privacy/erase.html", entity=spec, entity_label=spec.label.get(current_lang()),
            pk=pk, title=title, mode=spec.subject.erase if spec.subject else "",
            sealed=[f.label.get(current_lang()) for f in spec.sealed_fields])

    @expose("/retention/")
    def retention(self) -> Any:
        from app.privacy import retention
        from app.privacy.words import rule_words

        _require()
        items = retention.preview()
        lang = current_lang()
        for item in items:
            item["label_text"] = item["label"].get(lang)
            item["rule_text"] = rule_words(state().spec.entity(item["entity"]), lang)
        return self.render_template("privacy/retention.html", items=items,
                                    runs=retention.runs(), next_run=retention.next_run(),
                                    admin=is_admin(g.user))

    @expose("/retention/confirm/<entity>", methods=["POST"])
    def confirm(self, entity: str) -> Any:
        """An admin lets the schedule run a rule, having seen its preview."""
        from app.privacy import retention

        _require(admin=True)
        spec = next((e for e in retention.rules() if e.name == entity), None)
        if spec is None:
            abort(404)
        retention.confirm(spec, g.user.username)
        flash(gettext(N_("The rule will run at the next scheduled run.")), "success")
        return redirect("/privacy/retention/")

    @expose("/retention/<int:run_id>")
    def run_report(self, run_id: int) -> Any:
        from app.privacy.retention import report

        _require()
        run, items = report(run_id)
        if run is None:
            abort(404)
        return self.render_template("privacy/report.html", run=run, items=items)

    @expose("/retention/<int:run_id>.csv")
    def run_csv(self, run_id: int) -> Any:
        from app.privacy.retention import report_rows

        _require()
        out = io.StringIO()
        csv.writer(out).writerows(report_rows(run_id))
        return Response("\ufeff" + out.getvalue(), mimetype="text/csv", headers={
            "Content-Disposition": f"attachment; filename=retention-run-{run_id}.csv"})


def register(app: Any, appbuilder: Any) -> None:
    """Add the privacy pages and the `sd_can_erase` template helper."""
    appbuilder.add_view_no_menu(PrivacyView)
    appbuilder.add_link("retention", label=_lazy(N_("Retention")), href="/privacy/retention/",
                        icon="fa-hourglass-end", category="Security")
    app.jinja_env.globals["sd_can_erase"] = can_erase
    app.jinja_env.globals["sd_erasure"] = erasure_of


def _lazy(message: str) -> Any:
    from flask_babel import LazyString

    return LazyString(lambda: gettext(message))


__all__ = ["PrivacyView", "api_erase", "register", "sealed_diff_row"]
