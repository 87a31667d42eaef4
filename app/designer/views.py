"""/designer/: the admin's schema designer (设计器) — entities, fields, roles, review, versions.

Every form turns into one edit of the admin's draft (a YAML text, app/designer/
editor.py); nothing touches the database until the review page, where the
plan in words (`plan_change`) is read, destructive steps are confirmed by
typing a name, and Apply runs the one guarded path (`apply_change`). The
draft is a file per admin in the instance folder, so it survives between
requests and workers of one node.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from flask import current_app, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import LazyString

from app.designer import editor
from app.designer.versions import (
    ChangeFailed,
    ChangeRefused,
    current_version,
    get_version,
    list_versions,
    plan_change,
    text_diff,
)
from app.i18n import N_, current_lang, gettext
from app.schema.spec import (
    ACTIONS,
    CHART_TYPES,
    DATE_TYPES,
    FIELD_TYPES,
    MEASURES,
    ON_DELETE,
    PERIODS,
)

EDITABLE_PARTS = ("charts", "views", "workflow")
# What the chart, view and dashboard pickers call each choice (translated on the page).
CHART_TYPE_TEXTS = {"pie": N_("Pie"), "bar": N_("Bars"), "line": N_("Line over time"),
                    "kpi": N_("One number (KPI)")}
PERIOD_TEXTS = {"day": N_("per day"), "week": N_("per week"), "month": N_("per month"),
                "quarter": N_("per quarter"), "year": N_("per year")}
COUNT_TEXT = N_("Number of records")
MEASURE_TEXTS = {"count": COUNT_TEXT, "sum": N_("Sum of %(field)s"),
                 "avg": N_("Average of %(field)s"), "min": N_("Minimum of %(field)s"),
                 "max": N_("Maximum of %(field)s")}
SYSTEM_TEXTS = {"id": N_("ID"), "created_at": N_("Created at"), "updated_at": N_("Updated at"),
                "created_by": N_("Created by"), "updated_by": N_("Updated by")}
APPLY_JOB = "designer_apply"
INT_OPTIONS = ("max_length", "precision", "scale")
NUMBER_OPTIONS = ("min", "max")


def _lazy(message: str) -> LazyString:
    return LazyString(lambda: gettext(message))


def _applied_fields(entity_name: str) -> set[str]:
    """The entity's field names in the applied schema (its columns in the database)."""
    from app.state import state

    applied = state().spec
    found = next((e for e in applied.entities if e.name == entity_name), None)
    return {f.name for f in found.fields} if found is not None else set()


# --- the draft -----------------------------------------------------------------------


def _draft_path() -> Path:
    folder = Path(current_app.instance_path) / "designer"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"draft-{int(g.user.id)}.json"


def load_draft() -> dict[str, Any] | None:
    """The admin's draft {base, text}, or None when they have no pending change."""
    path = _draft_path()
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def draft_text() -> str:
    """The text the admin is editing: the draft, else the current version."""
    draft = load_draft()
    return draft["text"] if draft else current_version().yaml_text


def save_draft(text: str, base: int | None = None) -> None:
    """Keep `text` as the admin's draft; the same text as the current version clears it."""
    current = current_version()
    if text == current.yaml_text:
        discard_draft()
        return
    old = load_draft()
    base = base if base is not None else (old["base"] if old else current.number)
    _draft_path().write_text(json.dumps({"base": base, "text": text}), encoding="utf-8")


def discard_draft() -> None:
    _draft_path().unlink(missing_ok=True)


def _edit(change: Any, *args: Any, **kwargs: Any) -> bool:
    """Apply one editor function to the draft; flash the reason and return False if refused."""
    try:
        save_draft(editor.edit(draft_text(), change, *args, **kwargs))
    except editor.EditError as exc:
        flash(gettext(exc.message, **exc.params), "danger")
        return False
    except Exception as exc:  # noqa: BLE001 - a YAML snippet the admin typed may not parse
        flash(gettext(N_("Could not read that: %(error)s"), error=str(exc).splitlines()[0]),
              "danger")
        return False
    flash(gettext(N_("Saved in your draft; review and apply it to take effect.")), "info")
    return True


def draft_state() -> tuple[Any, list[Any], dict[str, list[Any]]]:
    """(spec of the draft or of the current schema, every problem, problems by control key)."""
    from app.schema.loader import check_text
    from app.state import state

    spec, problems = check_text(draft_text(), str(current_app.config["SCHEMA_PATH"]))
    by_control: dict[str, list[Any]] = defaultdict(list)
    for problem in problems:
        by_control[editor.control_for(problem.path)].append(problem)
    return spec or state().spec, problems, by_control


def _page_for(path: str) -> str | None:
    """The designer page holding the control a problem's YAML path concerns."""
    parts = editor.control_for(path).split(".")
    if parts[0] == "entities" and len(parts) > 1:
        if len(parts) >= 4 and parts[2] == "fields":
            return url_for("DesignerView.field", entity_name=parts[1], field_name=parts[3])
        return url_for("DesignerView.entity", entity_name=parts[1])
    if parts[0] == "roles":
        return url_for("DesignerView.roles") + (f"#role-{parts[1]}" if len(parts) > 1 else "")
    if parts[0] == "dashboards":
        return url_for("DesignerView.index") + "#dashboards"
    if parts[0].startswith("reminders"):
        return url_for("DesignerView.reminders") + "#reminders"
    return url_for("DesignerView.yaml")


# --- reading forms ----------------------------------------------------------------------


def _number(text: str, whole: bool) -> int | float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise editor.EditError(gettext(N_("'%(value)s' is not a number"), value=text)) from exc
    return int(value) if whole or value == value.to_integral_value() else float(value)


def _default(text: str, field_type: str) -> Any:
    text = (text or "").strip()
    if not text:
        return None
    if field_type == "boolean":
        return text.lower() in ("1", "true", "yes", "on")
    if field_type in ("integer", "decimal") and not text.startswith("$"):
        return _number(text, field_type == "integer")
    return text


def field_options(form: Any) -> dict[str, Any]:
    """The field form as editor options (every key the form edits, empty ones to be dropped)."""
    field_type = form.get("type", "string")
    options: dict[str, Any] = {"type": field_type}
    for key in INT_OPTIONS:
        options[key] = _number(form.get(key, ""), True)
    for key in NUMBER_OPTIONS:
        options[key] = _number(form.get(key, ""), field_type == "integer")
    for key in ("to", "on_delete", "pattern", "currency"):
        options[key] = (form.get(key) or "").strip() or None
    for key in editor.FLAG_OPTIONS:
        options[key] = form.get(key) == "on"
    options["default"] = _default(form.get("default", ""), field_type)
    options["label"] = {"en": form.get("label_en", ""), "zh": form.get("label_zh", "")}
    options["help"] = {"en": form.get("help_en", ""), "zh": form.get("help_zh", "")}
    if field_type != "relation":
        options.update(to=None, on_delete=None, many=False)
    return options


def edit_choices(doc: Any, entity_name: str, field_name: str, form: Any) -> None:
    """Rename, reorder, remove and add enum choices from the choices table of the field form."""
    keys = form.getlist("choice_key")
    removed = set(form.getlist("choice_remove"))
    positions = form.getlist("choice_pos")
    for index, key in enumerate(keys):
        if key in removed:
            editor.remove_choice(doc, entity_name, field_name, key)
        else:
            editor.set_choice(doc, entity_name, field_name, key,
                              form.getlist("choice_en")[index], form.getlist("choice_zh")[index])
    order = sorted((k for k in keys if k not in removed),
                   key=lambda k: _number(positions[keys.index(k)] or "0", False) or 0)
    new_key = (form.get("new_choice_key") or "").strip()
    if new_key:
        editor.set_choice(doc, entity_name, field_name, new_key, form.get("new_choice_en", ""),
                          form.get("new_choice_zh", ""))
        order.append(new_key)
    if keys or new_key:
        editor.reorder_choices(doc, entity_name, field_name, order)


def save_field(doc: Any, entity_name: str, field_name: str, form: Any) -> None:
    """One edit of the draft document from the field form: options, then choices."""
    editor.set_field(doc, entity_name, field_name, field_options(form))
    if form.get("type") == "enum":
        edit_choices(doc, entity_name, field_name, form)


def chart_from_form(form: Any, dated: set[str]) -> dict[str, Any]:
    """The chart form as an editor chart.

    A KPI has no `group_by`; `period` is kept only for a date `group_by` (names in
    `dated`); the measure select sends `count` or `func:field`.
    """
    chart_type = form.get("type") or "bar"
    group_by = ((form.get("group_by") or "").strip() or None) if chart_type != "kpi" else None
    func, measured = ((form.get("measure") or "count").split(":", 1) + [""])[:2]
    return {"name": (form.get("name") or "").strip(), "type": chart_type, "group_by": group_by,
            "period": (form.get("period") or None) if group_by in dated else None,
            "measure": {func: measured} if measured else None,
            "label": {"en": form.get("label_en", ""), "zh": form.get("label_zh", "")}}


def view_from_form(kind: str, form: Any) -> dict[str, Any]:
    """The kanban or calendar form as the view's options (empty ones are left out)."""
    if kind == "kanban":
        return {"group_by": form.get("group_by") or None,
                "card": [c for c in form.getlist("card") if c]}
    return {key: form.get(key) or None for key in ("date", "title", "end")}


def dashboard_item_from_form(form: Any) -> dict[str, Any]:
    """The add-a-tile form: `{chart: ref}` or `{kpi: ref}`, with an optional label."""
    kind = "kpi" if form.get("kind") == "kpi" else "chart"
    return {kind: (form.get(kind) or "").strip(),
            "label": {"en": form.get("label_en", ""), "zh": form.get("label_zh", "")}}


def transition_from_form(form: Any) -> dict[str, Any]:
    """The workflow step form as an editor transition (`when` and `approval` are not in
    the form: the editor keeps those of the step being edited)."""
    return {"name": (form.get("name") or "").strip(),
            "from": [s for s in form.getlist("from") if s],
            "to": (form.get("to") or "").strip(),
            "roles": [r for r in form.getlist("roles") if r],
            "requires": [f for f in form.getlist("requires") if f],
            "comment": "required" if form.get("comment") == "required" else None,
            "label": {"en": form.get("label_en", ""), "zh": form.get("label_zh", "")}}


def reminder_from_form(form: Any) -> dict[str, Any]:
    """The reminder form as an editor reminder.

    `kind` is `date` (the `date` field, an optional `before` duration, `yearly`) or
    `after` (`after_field` plus the `after` duration, written `after: {field: 24h}`);
    `notify` is a field path, or `role:<name>` for `{role: name}`.
    """
    after = form.get("kind") == "after"
    notify = (form.get("notify") or "").strip()
    return {
        "name": (form.get("name") or "").strip(), "entity": (form.get("entity") or "").strip(),
        "date": None if after else (form.get("date") or "").strip() or None,
        "before": None if after else (form.get("before") or "").strip() or None,
        "yearly": not after and form.get("yearly") == "on",
        "after": {(form.get("after_field") or "").strip(): (form.get("after") or "").strip()}
        if after else None,
        "notify": {"role": notify[5:]} if notify.startswith("role:") else notify or None,
        "label": {"en": form.get("label_en", ""), "zh": form.get("label_zh", "")}}


def reminder_form_values(reminder: Any) -> dict[str, Any]:
    """What the reminder form shows for a reminder of the YAML document (the inverse of
    `reminder_from_form`): kind, date or after field, durations, notify as one value."""
    reminder = reminder if isinstance(reminder, dict) else {}
    after = reminder.get("after")
    values: dict[str, Any] = {"kind": "date", "date": reminder.get("date") or "",
                              "before": reminder.get("before") or "", "after_field": "",
                              "after": "", "yearly": reminder.get("yearly") is True}
    if isinstance(after, dict) and after:
        field_name, duration = next(iter(after.items()))
        values.update(kind="after", date="", after_field=str(field_name), after=str(duration))
    elif after is not None:  # `date: x, after: 2h`
        values.update(kind="after", date="", after_field=values["date"], after=str(after))
    notify = reminder.get("notify")
    values["notify"] = f"role:{notify.get('role')}" if isinstance(notify, dict) else str(
        notify or "")
    return values


def reminder_timing(reminder: Any, names: dict[str, str]) -> str:
    """When a reminder fires, in words: "1d before Next follow-up", "every year on Birthday"."""
    values = reminder_form_values(reminder)
    if values["kind"] == "after":
        field_name = values["after_field"]
        return gettext(N_("%(duration)s after %(field)s"), duration=values["after"],
                       field=names.get(field_name) or field_name)
    field_name = values["date"]
    field_text = names.get(field_name) or field_name
    if values["yearly"]:
        return gettext(N_("every year on %(field)s"), field=field_text)
    if values["before"]:
        return gettext(N_("%(duration)s before %(field)s"), duration=values["before"],
                       field=field_text)
    return gettext(N_("on %(field)s"), field=field_text)


def _text(value: Any, lang: str) -> str:
    """A bilingual label of the YAML document in `lang` (else the other language)."""
    if isinstance(value, dict):
        return str(value.get(lang) or value.get("en") or value.get("zh") or "")
    return "" if value is None else str(value)


def field_texts(entity_spec: Any, lang: str) -> dict[str, str]:
    """Every field and system column of an entity, by name: its label in `lang`."""
    texts = {name: gettext(text) for name, text in SYSTEM_TEXTS.items()}
    if entity_spec is not None:
        texts |= {f.name: f.label.get(lang) for f in entity_spec.fields}
    return texts


def measure_text(measure: Any, names: dict[str, str]) -> str:
    """A chart's or KPI's measure in words: "Sum of Amount", "Number of records"."""
    if isinstance(measure, dict) and measure:
        func, field_name = next(iter(measure.items()))
    elif isinstance(measure, str) and ":" in measure:
        func, field_name = measure.split(":", 1)
    else:
        return gettext(COUNT_TEXT)
    text = MEASURE_TEXTS.get(str(func))
    if text is None:
        return f"{func}: {field_name}"
    return gettext(text, field=names.get(str(field_name), str(field_name)))


def dashboard_rows(doc: Any, spec: Any, lang: str) -> dict[str, list[dict[str, Any]]]:
    """Each dashboard's items in order, as rows the page lists: kind, reference, what it
    shows in words (the chart's title, the KPI's measure) and its own label."""
    boards = doc.get("dashboards")
    boards = boards if isinstance(boards, dict) and boards else {"home": []}
    charts = {f"{e.name}.{c.name}": c.label.get(lang) for e in spec.entities for c in e.charts}
    entities = {e.name: e for e in spec.entities}
    rows: dict[str, list[dict[str, Any]]] = {}
    for board, items in boards.items():
        rows[str(board)] = []
        for item in items if isinstance(items, list) else []:
            item = item if isinstance(item, dict) else {}
            kind = "chart" if "chart" in item else "kpi"
            ref = str(item.get(kind) or "")
            entity_name, rest = (ref.split(".", 1) + [""])[:2]
            found = entities.get(entity_name)
            shows = charts.get(ref, "") if kind == "chart" else measure_text(
                rest, field_texts(found, lang))
            rows[str(board)].append({
                "kind": kind, "ref": ref, "shows": shows, "label": _text(item.get("label"), lang),
                "entity": found.label.get(lang) if found else entity_name})
    return rows


def _role_options(doc: Any, lang: str) -> list[tuple[str, str]]:
    """Every role of the YAML document as (key, label in `lang`)."""
    found = doc.get("roles")
    return [(str(k), _text(v.get("label") if isinstance(v, dict) else None, lang) or str(k))
            for k, v in (found.items() if isinstance(found, dict) else [])]


def workflow_context(doc: Any, entity_name: str, args: Any, lang: str) -> dict[str, Any]:
    """What the workflow section of an entity page shows and offers, from the YAML document
    (so a draft the checker refuses still shows what the admin chose)."""
    body = editor.entity(doc, entity_name)
    flow = body.get("workflow") if isinstance(body.get("workflow"), dict) else None
    fields_map = body.get("fields") if isinstance(body.get("fields"), dict) else {}
    state_fields = {name: [(key, _text(text, lang) or key) for key, text in choices]
                    for name, choices in editor.state_fields(fields_map).items()}
    steps = [t if isinstance(t, dict) else {} for t in (flow or {}).get("transitions") or []]
    field_name = str((flow or {}).get("field") or "")
    # the workflow's own field, even one the pickers no longer offer (made sensitive)
    states = [(key, _text(text, lang) or key)
              for key, text in editor.choice_pairs(fields_map.get(field_name))]
    at = args.get("at", type=int)
    editing_step = None
    if args.get("transition") is not None:
        editing_step = next((i for i, t in enumerate(steps) if t.get("name") == args.get(
            "transition") and at in (None, i)), None)
    return {"workflow": flow, "steps": steps, "state_fields": state_fields, "states": states,
            "state_texts": dict(states), "editing_step": editing_step,
            "roles_offered": _role_options(doc, lang),
            "step_fields": [str(f) for f in fields_map]}


def _as_list(value: Any) -> list[Any]:
    """A transition's `from` (one state or several) as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def reminders_context(doc: Any, spec: Any, args: Any, lang: str) -> dict[str, Any]:
    """What the reminders page shows and offers: each reminder as a row, and per entity
    the date fields, the person fields to notify and the field labels."""
    items = doc.get("reminders")
    rows = [r if isinstance(r, dict) else {} for r in (items if isinstance(items, list) else [])]
    at = args.get("at", type=int)
    editing = None
    if args.get("reminder") is not None:
        editing = next((i for i, r in enumerate(rows) if r.get("name") == args.get("reminder")
                        and at in (None, i)), None)
    entities = [(e, {"dates": [f.name for f in e.fields if f.type in DATE_TYPES],
                     "after": editor.date_fields(e), "notify": editor.notify_paths(spec, e),
                     "names": field_texts(e, lang)}) for e in spec.entities]
    return {"rows": rows, "editing": editing, "entities": entities,
            "by_entity": {e.name: pick for e, pick in entities},
            "entity_texts": {e.name: e.label.get(lang) for e in spec.entities},
            "roles_offered": _role_options(doc, lang)}


def _pickers(entity_spec: Any) -> dict[str, list[str]]:
    """What the chart and view forms of an entity offer, from what the checker accepts."""
    if entity_spec is None:
        return {"group": [], "dates": [], "numbers": [], "enums": [], "shown": []}
    return {"group": editor.group_fields(entity_spec), "dates": editor.date_fields(entity_spec),
            "numbers": editor.measure_fields(entity_spec),
            "enums": [f.name for f in entity_spec.fields if f.type == "enum"],
            "shown": [f.name for f in entity_spec.fields] + list(SYSTEM_TEXTS)}


def _part_yaml(doc: Any, entity_name: str, key: str) -> str:
    return _as_snippet(key, editor.entity(doc, entity_name).get(key))


def _top_yaml(doc: Any, key: str) -> str:
    return _as_snippet(key, doc.get(key))


def _as_snippet(key: str, value: Any) -> str:
    """A part of the schema as the YAML text the admin edits (without its own key)."""
    if value is None:
        return ""
    wrapper = editor.load(f"{key}: null\n")
    wrapper[key] = value
    text = editor.dump(wrapper)
    body = text.split("\n", 1)[1] if "\n" in text else ""
    if not body.strip():  # a flow value sits on the key's line
        return text.split(":", 1)[1].strip() + "\n"
    return _dedent(body)


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


class DesignerView(BaseView):
    """The schema designer for admins: every change is a draft, reviewed, then applied."""

    route_base = "/designer"
    default_view = "index"
    class_permission_name = "designer"
    method_permission_name = {
        name: "read" for name in ("index", "entity", "field", "roles", "yaml", "review",
                                  "versions", "version", "compare", "job", "reminders")
    } | {
        name: "update" for name in ("add_entity", "entity_settings", "entity_lists",
                                    "entity_part", "top_part", "remove_entity", "remove_field",
                                    "rename_field",
                                    "save_chart", "remove_chart", "save_view", "remove_view",
                                    "save_workflow", "remove_workflow", "save_transition",
                                    "remove_transition", "save_reminder", "remove_reminder",
                                    "add_dashboard_item", "remove_dashboard_item",
                                    "move_dashboard_item", "add_role",
                                    "role_grants", "role_row", "remove_row", "remove_role",
                                    "save_yaml", "apply", "discard", "reapply")
    }

    def _render(self, template: str, **context: Any) -> Any:
        draft = load_draft()
        current = current_version()
        return self.render_template(
            template, draft=draft, current=current, lang=current_lang(), **context)

    # --- overview ---------------------------------------------------------------------

    @expose("/")
    @has_access
    def index(self) -> Any:
        spec, problems, by_control = draft_state()
        doc = editor.load(draft_text())
        parts = {key: _top_yaml(doc, key) for key in editor.TOP_LEVEL_PARTS}
        return self._render("designer/index.html", spec=spec, problems=problems,
                            by_control=by_control, parts=parts,
                            reminder_count=len(doc.get("reminders") or []),
                            boards=dashboard_rows(doc, spec, current_lang()),
                            chart_refs=editor.chart_refs(spec), kpi_refs=editor.kpi_refs(spec),
                            kpi_text=lambda e, ref: measure_text(
                                ref.partition(".")[2], field_texts(e, current_lang())),
                            title=gettext(N_("Designer")))

    @expose("/part/<key>", methods=["POST"])
    @has_access
    def top_part(self, key: str) -> Any:
        _edit(editor.replace_top_level, key, request.form.get("yaml", ""))
        if key == "reminders":
            return redirect(url_for(".reminders") + "#part-reminders")
        return redirect(url_for(".index") + f"#part-{key}")

    @expose("/entity/add", methods=["POST"])
    @has_access
    def add_entity(self) -> Any:
        form = request.form
        name = (form.get("name") or "").strip()
        if _edit(editor.add_entity, name, form.get("label_en", ""), form.get("label_zh", ""),
                 form.get("menu_en", ""), form.get("menu_zh", "")):
            return redirect(url_for(".entity", entity_name=name))
        return redirect(url_for(".index"))

    # --- one entity -----------------------------------------------------------------------

    @expose("/entity/<entity_name>")
    @has_access
    def entity(self, entity_name: str) -> Any:
        spec, problems, by_control = draft_state()
        doc = editor.load(draft_text())
        if entity_name not in editor.entities(doc):
            flash(gettext(N_("No entity %(name)s in the draft."), name=entity_name), "danger")
            return redirect(url_for(".index"))
        body = editor.entity(doc, entity_name)
        entity_spec = next((e for e in spec.entities if e.name == entity_name), None)
        charts = [c for c in body.get("charts") or [] if isinstance(c, dict)]
        editing = next((c for c in charts if c.get("name") == request.args.get("chart")), None)
        return self._render(
            "designer/entity.html", name=entity_name, body=body, entity=entity_spec, spec=spec,
            by_control=by_control, parts={k: _part_yaml(doc, entity_name, k)
                                          for k in EDITABLE_PARTS},
            prefix=f"entities.{entity_name}", chart_types=CHART_TYPES, charts=charts,
            editing=editing, pickers=_pickers(entity_spec), names=field_texts(
                entity_spec, current_lang()), measure_text=measure_text,
            type_texts=CHART_TYPE_TEXTS, period_texts=PERIOD_TEXTS, periods=PERIODS,
            measures=[m for m in MEASURES if m != "count"], as_list=_as_list,
            rule_text=_rule_text, **workflow_context(doc, entity_name, request.args,
                                                     current_lang()),
            title=gettext(N_("Designer")))

    @expose("/entity/<entity_name>/settings", methods=["POST"])
    @has_access
    def entity_settings(self, entity_name: str) -> Any:
        form = request.form
        _edit(editor.set_entity, entity_name, label_en=form.get("label_en", ""),
              label_zh=form.get("label_zh", ""), menu_en=form.get("menu_en", ""),
              menu_zh=form.get("menu_zh", ""), title=form.get("title") or None)
        return redirect(url_for(".entity", entity_name=entity_name))

    @expose("/entity/<entity_name>/lists", methods=["POST"])
    @has_access
    def entity_lists(self, entity_name: str) -> Any:
        form = request.form

        def change(doc: Any) -> None:
            for key in editor.LIST_SETTINGS:
                if key == "order":
                    values = [f"{d}{f}" for f, d in zip(form.getlist("order_field"),
                                                        form.getlist("order_dir"), strict=False)
                              if f]
                else:
                    values = form.getlist(key)
                editor.set_list_setting(doc, entity_name, key, values)
            editor.set_import_key(doc, entity_name, form.get("import_key") or None)

        _edit(change)
        return redirect(url_for(".entity", entity_name=entity_name) + "#lists")

    @expose("/entity/<entity_name>/part/<key>", methods=["POST"])
    @has_access
    def entity_part(self, entity_name: str, key: str) -> Any:
        if key in EDITABLE_PARTS:
            _edit(editor.replace_part, entity_name, key, request.form.get("yaml", ""))
        return redirect(url_for(".entity", entity_name=entity_name) + f"#part-{key}")

    # --- charts and views of an entity ---------------------------------------------------

    @expose("/entity/<entity_name>/charts", methods=["POST"])
    @has_access
    def save_chart(self, entity_name: str) -> Any:
        """Add a chart, or replace the one named `original` (the edit form)."""
        form = request.form
        original = (form.get("original") or "").strip()

        def change(doc: Any) -> None:
            dated = {n for n, f in editor.fields(doc, entity_name).items()
                     if isinstance(f, dict) and f.get("type") in DATE_TYPES}
            chart = chart_from_form(form, dated | {"created_at", "updated_at"})
            if original:
                editor.replace_chart(doc, entity_name, original, chart)
            else:
                editor.add_chart(doc, entity_name, chart)

        _edit(change)
        return redirect(url_for(".entity", entity_name=entity_name) + "#charts")

    @expose("/entity/<entity_name>/charts/<chart_name>/remove", methods=["POST"])
    @has_access
    def remove_chart(self, entity_name: str, chart_name: str) -> Any:
        index = request.form.get("index", type=int)
        _edit(editor.remove_chart, entity_name, chart_name, index)
        return redirect(url_for(".entity", entity_name=entity_name) + "#charts")

    @expose("/entity/<entity_name>/views/<kind>", methods=["POST"])
    @has_access
    def save_view(self, entity_name: str, kind: str) -> Any:
        _edit(editor.set_view, entity_name, kind, view_from_form(kind, request.form))
        return redirect(url_for(".entity", entity_name=entity_name) + f"#view-{kind}")

    @expose("/entity/<entity_name>/views/<kind>/remove", methods=["POST"])
    @has_access
    def remove_view(self, entity_name: str, kind: str) -> Any:
        _edit(editor.remove_view, entity_name, kind)
        return redirect(url_for(".entity", entity_name=entity_name) + f"#view-{kind}")

    # --- the workflow of an entity ------------------------------------------------------

    @expose("/entity/<entity_name>/workflow", methods=["POST"])
    @has_access
    def save_workflow(self, entity_name: str) -> Any:
        """Set the workflow's enum field and first state (a new workflow has no step yet)."""
        form = request.form
        _edit(editor.set_workflow, entity_name, form.get("field", ""), form.get("initial", ""))
        return redirect(url_for(".entity", entity_name=entity_name) + "#workflow")

    @expose("/entity/<entity_name>/workflow/remove", methods=["POST"])
    @has_access
    def remove_workflow(self, entity_name: str) -> Any:
        _edit(editor.remove_workflow, entity_name)
        return redirect(url_for(".entity", entity_name=entity_name) + "#workflow")

    @expose("/entity/<entity_name>/workflow/transitions", methods=["POST"])
    @has_access
    def save_transition(self, entity_name: str) -> Any:
        """Add a step, or replace the one named `original` (at `index`: the edit form)."""
        form = request.form
        original = (form.get("original") or "").strip()
        step = transition_from_form(form)
        if original:
            _edit(editor.replace_transition, entity_name, original, step,
                  form.get("index", type=int))
        else:
            _edit(editor.add_transition, entity_name, step)
        return redirect(url_for(".entity", entity_name=entity_name) + "#workflow")

    @expose("/entity/<entity_name>/workflow/transitions/<step_name>/remove", methods=["POST"])
    @has_access
    def remove_transition(self, entity_name: str, step_name: str) -> Any:
        _edit(editor.remove_transition, entity_name, step_name,
              request.form.get("index", type=int))
        return redirect(url_for(".entity", entity_name=entity_name) + "#workflow")

    # --- reminders ---------------------------------------------------------------------------

    @expose("/reminders")
    @has_access
    def reminders(self) -> Any:
        spec, _problems, by_control = draft_state()
        doc = editor.load(draft_text())
        return self._render(
            "designer/reminders.html", spec=spec, by_control=by_control,
            part=_top_yaml(doc, "reminders"), timing=reminder_timing,
            form_values=reminder_form_values, rule_text=_rule_text,
            **reminders_context(doc, spec, request.args, current_lang()),
            title=gettext(N_("Designer")))

    @expose("/reminders", methods=["POST"])
    @has_access
    def save_reminder(self) -> Any:
        """Add a reminder, or replace the one named `original` (at `index`: the edit form)."""
        form = request.form
        original = (form.get("original") or "").strip()
        reminder = reminder_from_form(form)
        if original:
            _edit(editor.replace_reminder, original, reminder, form.get("index", type=int))
        else:
            _edit(editor.add_reminder, reminder)
        return redirect(url_for(".reminders") + "#reminders")

    @expose("/reminders/<reminder_name>/remove", methods=["POST"])
    @has_access
    def remove_reminder(self, reminder_name: str) -> Any:
        _edit(editor.remove_reminder, reminder_name, request.form.get("index", type=int))
        return redirect(url_for(".reminders") + "#reminders")

    # --- dashboards --------------------------------------------------------------------------

    @expose("/dashboards/<board>/items", methods=["POST"])
    @has_access
    def add_dashboard_item(self, board: str) -> Any:
        _edit(editor.add_dashboard_item, board, dashboard_item_from_form(request.form))
        return redirect(url_for(".index") + f"#dashboard-{board}")

    @expose("/dashboards/<board>/items/<int:index>/remove", methods=["POST"])
    @has_access
    def remove_dashboard_item(self, board: str, index: int) -> Any:
        _edit(editor.remove_dashboard_item, board, index)
        return redirect(url_for(".index") + f"#dashboard-{board}")

    @expose("/dashboards/<board>/items/<int:index>/move", methods=["POST"])
    @has_access
    def move_dashboard_item(self, board: str, index: int) -> Any:
        offset = -1 if request.form.get("direction") == "up" else 1
        _edit(editor.move_dashboard_item, board, index, offset)
        return redirect(url_for(".index") + f"#dashboard-{board}")

    @expose("/entity/<entity_name>/remove", methods=["POST"])
    @has_access
    def remove_entity(self, entity_name: str) -> Any:
        _edit(editor.remove_entity, entity_name)
        return redirect(url_for(".index"))

    # --- one field ---------------------------------------------------------------------------

    @expose("/entity/<entity_name>/field/<field_name>", methods=["GET", "POST"])
    @has_access
    def field(self, entity_name: str, field_name: str) -> Any:
        is_new = field_name == "_new"
        if request.method == "POST":
            name = (request.form.get("name") or "").strip() if is_new else field_name
            if _edit(save_field, entity_name, name, request.form):
                return redirect(url_for(".entity", entity_name=entity_name) + f"#field-{name}")
            return redirect(request.url)
        spec, _problems, by_control = draft_state()
        doc = editor.load(draft_text())
        try:
            current = {} if is_new else dict(editor.fields(doc, entity_name)[field_name])
        except (KeyError, editor.EditError):
            flash(gettext(N_("No field %(name)s in the draft."), name=field_name), "danger")
            return redirect(url_for(".index"))
        return self._render(
            "designer/field.html", entity_name=entity_name, field_name=field_name, is_new=is_new,
            options=current, spec=spec, field_types=FIELD_TYPES, on_delete=ON_DELETE,
            problems=by_control.get(f"entities.{entity_name}.fields.{field_name}", []),
            editable=is_new or current.get("type") in FIELD_TYPES,
            title=gettext(N_("Designer")))

    @expose("/entity/<entity_name>/field/<field_name>/rename", methods=["POST"])
    @has_access
    def rename_field(self, entity_name: str, field_name: str) -> Any:
        new = (request.form.get("new_name") or "").strip()
        applied = _applied_fields(entity_name)
        if _edit(editor.rename_field, entity_name, field_name, new, applied):
            field_name = new
        return redirect(url_for(".field", entity_name=entity_name, field_name=field_name))

    @expose("/entity/<entity_name>/field/<field_name>/remove", methods=["POST"])
    @has_access
    def remove_field(self, entity_name: str, field_name: str) -> Any:
        _edit(editor.remove_field, entity_name, field_name)
        return redirect(url_for(".entity", entity_name=entity_name))

    # --- roles ------------------------------------------------------------------------------

    @expose("/roles")
    @has_access
    def roles(self) -> Any:
        spec, _problems, by_control = draft_state()
        doc = editor.load(draft_text())
        role_docs = editor.roles(doc)
        paths = {e.name: editor.scope_paths(spec, e.name) for e in spec.entities}
        trees = {e.name for e in spec.entities if e.tree_field is not None}
        return self._render(
            "designer/roles.html", spec=spec, role_docs=role_docs, actions=ACTIONS,
            paths=paths, values=editor.scope_values(spec), operators=editor.ROW_OPERATORS,
            trees=trees, by_control=by_control, rule_text=_rule_text,
            title=gettext(N_("Designer")))

    @expose("/roles/add", methods=["POST"])
    @has_access
    def add_role(self) -> Any:
        form = request.form
        name = (form.get("name") or "").strip()
        _edit(editor.add_role, name, form.get("label_en", ""), form.get("label_zh", ""))
        return redirect(url_for(".roles") + f"#role-{name}")

    @expose("/roles/<role_name>/grants", methods=["POST"])
    @has_access
    def role_grants(self, role_name: str) -> Any:
        grid: dict[str, list[str]] = defaultdict(list)
        for value in request.form.getlist("grant"):
            entity_name, _, action = value.rpartition(":")
            grid[entity_name].append(action)

        def change(doc: Any) -> None:
            editor.set_role_label(doc, role_name, request.form.get("label_en", ""),
                                  request.form.get("label_zh", ""))
            editor.set_grants(doc, role_name, grid)

        _edit(change)
        return redirect(url_for(".roles") + f"#role-{role_name}")

    @expose("/roles/<role_name>/rows", methods=["POST"])
    @has_access
    def role_row(self, role_name: str) -> Any:
        form = request.form
        value: Any = form.get("value") or ""
        if value == "_literal":
            value = (form.get("literal") or "").strip()
            if form.get("operator") == "in":
                value = [v.strip() for v in value.split(",") if v.strip()]
        _edit(editor.set_row_rule, role_name, form.get("entity", ""), form.get("path", ""),
              form.get("operator", "eq"), value)
        return redirect(url_for(".roles") + f"#role-{role_name}")

    @expose("/roles/<role_name>/rows/<entity_name>/remove", methods=["POST"])
    @has_access
    def remove_row(self, role_name: str, entity_name: str) -> Any:
        _edit(editor.remove_row_rule, role_name, entity_name)
        return redirect(url_for(".roles") + f"#role-{role_name}")

    @expose("/roles/<role_name>/remove", methods=["POST"])
    @has_access
    def remove_role(self, role_name: str) -> Any:
        _edit(editor.remove_role, role_name)
        return redirect(url_for(".roles"))

    # --- raw YAML -------------------------------------------------------------------------

    @expose("/yaml")
    @has_access
    def yaml(self) -> Any:
        _spec, problems, _by = draft_state()
        return self._render("designer/yaml.html", text=draft_text(), problems=problems,
                            title=gettext(N_("Designer")))

    @expose("/yaml", methods=["POST"])
    @has_access
    def save_yaml(self) -> Any:
        save_draft(request.form.get("yaml", "").replace("\r\n", "\n"))
        if request.form.get("next") == "review":
            return redirect(url_for(".review"))
        flash(gettext(N_("Saved in your draft; review and apply it to take effect.")), "info")
        return redirect(url_for(".yaml"))

    @expose("/discard", methods=["POST"])
    @has_access
    def discard(self) -> Any:
        discard_draft()
        flash(gettext(N_("Draft discarded.")), "info")
        return redirect(url_for(".index"))

    # --- review and apply ------------------------------------------------------------------

    @expose("/review")
    @has_access
    def review(self) -> Any:
        return self._review_page()

    def _review_page(self, message: str | None = None, comment: str = "") -> Any:
        draft = load_draft()
        if draft is None:
            flash(gettext(N_("No change to review: your draft is the current version.")), "info")
            return redirect(url_for(".index"))
        plan = plan_change(draft["text"])
        return self._render("designer/review.html", plan=plan, message=message,
                            diff=_readable_diff(current_version().yaml_text, draft["text"]),
                            comment=comment, page_for=_page_for, stale=draft["base"]
                            != current_version().number, title=gettext(N_("Review changes")))

    @expose("/apply", methods=["POST"])
    @has_access
    def apply(self) -> Any:
        from app.designer.versions import apply_change

        draft = load_draft()
        if draft is None:
            return redirect(url_for(".index"))
        form = request.form
        comment = (form.get("comment") or "").strip()
        confirmations = form.getlist("confirm")
        if current_app.config.get("REDIS_URL"):
            return self._apply_as_job(draft["text"], comment, confirmations)
        try:
            version = apply_change(draft["text"], author=g.user.username, comment=comment,
                                   confirmations=confirmations)
        except ChangeRefused as exc:
            return self._review_page(exc.message, comment)
        except ChangeFailed as exc:
            flash(gettext(N_("The change failed and was rolled back; backup %(backup)s is "
                             "kept."), backup=exc.backup or "-"), "danger")
            return self._review_page("\n".join(exc.report), comment)
        discard_draft()
        flash(gettext(N_("Version %(number)d applied; every process serves it within seconds."),
                      number=version.number), "success")
        return redirect(url_for(".versions"))

    def _apply_as_job(self, text: str, comment: str, confirmations: list[str]) -> Any:
        """Refuse at once what the plan refuses; else run the apply on a job worker."""
        from app.jobs import enqueue

        plan = plan_change(text)
        if plan.errors:
            return self._review_page(gettext(N_("The schema has %(count)d problem(s); nothing "
                                                "was changed."), count=len(plan.errors)), comment)
        missing = plan.missing(confirmations)
        if missing:
            return self._review_page(gettext(
                N_("Some changes lose data: type %(names)s to confirm them. Nothing was changed."),
                names=", ".join(missing)), comment)
        run_id = enqueue(APPLY_JOB, {"text": text, "author": g.user.username, "comment": comment,
                                     "confirmations": confirmations, "lang": current_lang()},
                         user=g.user)
        return redirect(url_for(".job", run_id=run_id))

    @expose("/job/<int:run_id>")
    @has_access
    def job(self, run_id: int) -> Any:
        """Progress of an apply job; when it is done, the draft it applied is cleared."""
        from app.designer.versions import digest_of
        from app.jobs import get_run

        run = get_run(run_id)
        if run is None or run["kind"] != APPLY_JOB:
            return redirect(url_for(".versions"))
        draft = load_draft()
        if run["status"] == "done" and draft and digest_of(draft["text"]) == \
                current_version().digest:
            discard_draft()
        return self._render("designer/job.html", run=run, title=gettext(N_("Review changes")))

    # --- versions ---------------------------------------------------------------------------

    @expose("/versions")
    @has_access
    def versions(self) -> Any:
        return self._render("designer/versions.html", versions=list_versions(),
                            title=gettext(N_("Schema versions")))

    @expose("/versions/<int:version_id>")
    @has_access
    def version(self, version_id: int) -> Any:
        found = get_version(version_id)
        if found is None:
            flash(gettext(N_("No such schema version.")), "danger")
            return redirect(url_for(".versions"))
        return self._render("designer/version.html", version=found,
                            title=gettext(N_("Schema versions")))

    @expose("/versions/compare")
    @has_access
    def compare(self) -> Any:
        old = get_version(request.args.get("a", type=int) or 0)
        new = get_version(request.args.get("b", type=int) or 0)
        if old is None or new is None:
            flash(gettext(N_("Pick two versions to compare.")), "warning")
            return redirect(url_for(".versions"))
        diff = text_diff(old.yaml_text, new.yaml_text, f"v{old.number}", f"v{new.number}")
        return self._render("designer/compare.html", old=old, new=new, diff=diff,
                            title=gettext(N_("Schema versions")))

    @expose("/versions/<int:version_id>/reapply", methods=["POST"])
    @has_access
    def reapply(self, version_id: int) -> Any:
        """Put an earlier version's text in the draft and show the same review as any change."""
        found = get_version(version_id)
        if found is None:
            return redirect(url_for(".versions"))
        save_draft(found.yaml_text, base=current_version().number)
        if load_draft() is None:
            flash(gettext(N_("This text is the current version %(number)d; nothing to apply."),
                          number=current_version().number), "info")
            return redirect(url_for(".versions"))
        return redirect(url_for(".review", back_to=found.number))


def _readable_diff(old: str, new: str) -> str:
    """The diff of what changed, not of how it is laid out.

    ruamel keeps comments and order but not the column alignment or the line
    breaks inside flow mappings, so both texts are written the same way first.
    """
    try:
        old, new = editor.dump(editor.load(old)), editor.dump(editor.load(new))
    except Exception:  # noqa: BLE001 - a text that does not parse: show the raw diff
        pass
    return text_diff(old, new, "current", "new")


def _rule_text(rule: Any) -> str:
    """A row rule as one line of YAML flow text ({owner: $user})."""
    doc = editor.load("x: null\n")
    doc["x"] = rule
    return editor.dump(doc)[3:].strip()


def apply_job(ctx: Any, text: str, author: str, comment: str,
              confirmations: list[str] | None = None, **_: Any) -> dict[str, Any]:
    """The job kind `designer_apply`: the guarded apply on a job worker (RQ with REDIS_URL)."""
    from app.designer.versions import apply_change

    version = apply_change(text, author=author, comment=comment,
                           confirmations=confirmations or ())
    return {"counts": {"version": version.number}, "result_file": version.backup_file,
            "message": gettext(N_("Version %(number)d applied; every process serves it within "
                                  "seconds."), number=version.number)}


def register_designer(appbuilder: Any) -> Any:
    """Add the designer under the admin's Security menu and its apply job kind."""
    from app.jobs import register_kind

    register_kind(APPLY_JOB, apply_job, queue="backup", timeout=3600)
    return appbuilder.add_view(DesignerView, "designer", label=_lazy(N_("Designer")),
                               icon="fa-magic", category="Security")
