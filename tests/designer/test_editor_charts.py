"""Designer edits of charts, views and dashboards as YAML transformations.

For both shipped schemas and the every-type schema of test_editor: each edit
function gives a text the checker accepts (or, for a refused choice, the coded
problem at the path whose control shows it), keeps the file's comments and
writes keys in the format's order; undoing the edit gives the original back.
"""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from app.designer import editor
from app.designer.views import chart_from_form, view_from_form
from app.schema.loader import check_text
from tests.designer.test_editor import errors_of, schema_texts

IDS = [n for n, _ in schema_texts()]


def comments(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip().startswith("# ")]


def kept_comments(before: str, after: str) -> bool:
    return all(line in after for line in comments(before))


def problems_at(text: str, name: str) -> list[tuple[str, str]]:
    """(code, control) of every error of the text."""
    _spec, problems = check_text(text, f"{name}.yaml")
    return [(p.code, editor.control_for(p.path)) for p in problems if p.is_error]


def new_chart(entity) -> dict:
    """A chart of the entity from what the pickers offer: its first grouping field,
    summing its first numeric field when it has one."""
    group_by = editor.group_fields(entity)[0]
    numbers = editor.measure_fields(entity)
    dated = group_by in editor.date_fields(entity)
    return {"name": "designer_probe", "type": "line" if dated else "bar", "group_by": group_by,
            "period": "week" if dated else None,
            "measure": {"sum": numbers[0]} if numbers else None,
            "label": {"en": "Probe", "zh": "探针"}}


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=IDS)
def test_chart_added_renamed_on_dashboards_then_removed(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    doc = editor.load(text)
    for entity in spec.entities:
        editor.add_chart(doc, entity.name, new_chart(entity))
        editor.add_dashboard_item(doc, "home", {"chart": f"{entity.name}.designer_probe"})
    added = editor.dump(doc)
    assert errors_of(added, name) == []
    assert kept_comments(text, added)
    new_spec, _ = check_text(added, f"{name}.yaml")
    for entity in spec.entities:
        chart = new_spec.entity(entity.name).charts[-1]
        assert (chart.name, chart.group_by, chart.label.zh) == (
            "designer_probe", new_chart(entity)["group_by"], "探针")
        editor.replace_chart(doc, entity.name, "designer_probe",
                             new_chart(entity) | {"name": "designer_renamed"})
    renamed = editor.dump(doc)
    assert errors_of(renamed, name) == []
    refs = [f"{i.entity}.{i.chart}" for i in check_text(renamed, "x.yaml")[0].dashboards["home"]
            if i.chart]
    assert all(f"{e.name}.designer_renamed" in refs for e in spec.entities)
    for entity in spec.entities:
        editor.remove_chart(doc, entity.name, "designer_renamed")
    if "dashboards" not in text:  # the tiles went with their charts; the board stays, empty
        assert doc["dashboards"] == {"home": []}
        del doc["dashboards"]
    assert editor.dump(doc) == editor.dump(editor.load(text))


def test_chart_keys_are_written_in_the_format_order_and_flow_style():
    doc = editor.load("version: 1\nentities:\n  a:\n    fields: {}\n")
    editor.add_chart(doc, "a", {"label": {"zh": "按月", "en": "Per month"},
                                "measure": {"avg": "x"}, "period": "month",
                                "group_by": "created_at", "type": "line", "name": "per_month"})
    editor.add_chart(doc, "a", {"name": "n", "type": "kpi", "group_by": "", "measure": "count",
                                "label": {"en": "", "zh": ""}})
    text = editor.dump(doc)
    assert ("- {name: per_month, type: line, group_by: created_at, period: month, "
            "measure: {avg: x}, label: {en: Per month, zh: 按月}}") in text
    assert "- {name: n, type: kpi}" in text


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=IDS)
def test_every_chart_of_the_schema_survives_the_chart_form(name, text):
    """The form offers every option the schemas use: a chart read into the form and
    saved back is the same chart, in the same place."""
    spec, _ = check_text(text, f"{name}.yaml")
    doc = editor.load(text)
    for entity in spec.entities:
        dated = set(editor.date_fields(entity))
        for chart in entity.charts:
            raw = next(c for c in editor.entity(doc, entity.name)["charts"]
                       if c["name"] == chart.name)
            measure = raw.get("measure")
            form = MultiDict({
                "name": chart.name, "type": raw.get("type", "bar"),
                "group_by": raw.get("group_by") or "", "period": raw.get("period") or "",
                "measure": ":".join(next(iter(measure.items()))) if measure else "count",
                "label_en": chart.label.en, "label_zh": chart.label.zh})
            editor.replace_chart(doc, entity.name, chart.name, chart_from_form(form, dated))
    after, problems = check_text(editor.dump(doc), f"{name}.yaml")
    assert after is not None, [p.format() for p in problems]
    for entity in spec.entities:
        assert after.entity(entity.name).charts == entity.charts


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=IDS)
def test_refused_chart_choices_are_named_by_the_checker_at_the_chart(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    entity = next(e for e in spec.entities if e.charts) if any(
        e.charts for e in spec.entities) else spec.entities[0]
    doc = editor.load(text)
    existing = entity.charts[0].name if entity.charts else None
    if existing is None:
        editor.add_chart(doc, entity.name, new_chart(entity) | {"name": "first"})
        existing = "first"
    count = len(editor.entity(doc, entity.name)["charts"])
    editor.add_chart(doc, entity.name, new_chart(entity) | {"name": existing})
    assert ("SD-E166", f"entities.{entity.name}.charts[{count}]") in problems_at(
        editor.dump(doc), name)
    editor.add_dashboard_item(doc, "home", {"chart": f"{entity.name}.{existing}"})
    editor.remove_chart(doc, entity.name, existing, count)  # the duplicate's row
    assert errors_of(editor.dump(doc), name) == []
    assert editor.dump(doc).count(f"chart: {entity.name}.{existing}}}") >= 1  # tile kept
    doc = editor.load(text)
    many = next((f.name for f in entity.fields if f.is_many or f.encrypted), None)
    editor.add_chart(doc, entity.name, {"name": "bad", "type": "pie",
                                        "group_by": many or "no_such_field"})
    at = f"entities.{entity.name}.charts[{len(entity.charts)}]"
    assert ("SD-E161", at) in problems_at(editor.dump(doc), name)
    with pytest.raises(editor.EditError):
        editor.add_chart(doc, entity.name, {"name": "Bad Name", "type": "pie"})
    with pytest.raises(editor.EditError):
        editor.replace_chart(doc, entity.name, "no_such_chart", {"name": "x", "type": "kpi"})


def test_group_pickers_leave_out_what_cannot_group():
    spec, _ = check_text(schema_texts()[2][1], "every_type.yaml")
    job = spec.entity("job")
    offered = editor.group_fields(job)
    assert {"state", "urgent", "due", "started", "worker", "approver", "created_at"} <= set(
        offered)
    assert not {"helpers", "phone", "notes", "code", "hours"} & set(offered)
    assert editor.measure_fields(job) == ["hours", "cost"]
    assert editor.date_fields(job) == ["due", "started", "created_at", "updated_at"]


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=IDS)
def test_kanban_and_calendar_set_from_the_pickers_then_removed(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    doc = editor.load(text)
    changed = []
    for entity in spec.entities:
        enums = [f.name for f in entity.fields if f.type == "enum"]
        if enums and entity.views.kanban is None:
            cards = [f.name for f in entity.fields if not f.sensitive][:2] + ["created_at"]
            editor.set_view(doc, entity.name, "kanban", view_from_form("kanban", MultiDict(
                [("group_by", enums[0])] + [("card", c) for c in cards])))
            changed.append((entity.name, "kanban"))
        dates = editor.date_fields(entity)
        if entity.views.calendar is None:
            editor.set_view(doc, entity.name, "calendar", view_from_form("calendar", MultiDict(
                {"date": dates[0], "title": "", "end": ""})))
            changed.append((entity.name, "calendar"))
    text2 = editor.dump(doc)
    assert errors_of(text2, name) == []
    assert kept_comments(text, text2)
    new_spec, _ = check_text(text2, f"{name}.yaml")
    for entity_name, kind in changed:
        view = getattr(new_spec.entity(entity_name).views, kind)
        assert view is not None
        if kind == "kanban":
            assert f"kanban: {{group_by: {view.group_by}, card: [" in text2
    for entity_name, kind in changed:
        editor.remove_view(doc, entity_name, kind)
    assert editor.dump(doc) == editor.dump(editor.load(text))
    with pytest.raises(editor.EditError):
        editor.set_view(doc, spec.entities[0].name, "gantt", {"date": "x"})


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=IDS)
def test_refused_view_choices_land_on_their_form(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    entity = spec.entities[0]
    not_enum = next(f.name for f in entity.fields if f.type != "enum")
    doc = editor.load(text)
    editor.set_view(doc, entity.name, "kanban", {"group_by": not_enum, "card": ["nowhere"]})
    editor.set_view(doc, entity.name, "calendar", {"date": not_enum})
    found = problems_at(editor.dump(doc), name)
    assert ("SD-E202", f"entities.{entity.name}.views.kanban") in found
    assert ("SD-E203", f"entities.{entity.name}.views.kanban") in found
    assert ("SD-E204", f"entities.{entity.name}.views.calendar") in found


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=IDS)
def test_dashboard_items_added_moved_and_removed(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    doc = editor.load(text)
    before = list(spec.dashboards.get("home", ()))
    kpis = [ref for _e, refs in editor.kpi_refs(spec) for ref in refs]
    charts = [ref for _e, refs in editor.chart_refs(spec) for ref in refs]
    for ref in kpis:
        editor.add_dashboard_item(doc, "home", {"kpi": ref, "label": {"en": "N", "zh": "数"}})
    for ref in charts:
        editor.add_dashboard_item(doc, "home", {"chart": ref, "label": {"en": "", "zh": ""}})
    added = editor.dump(doc)
    assert errors_of(added, name) == []
    assert kept_comments(text, added)
    home = check_text(added, f"{name}.yaml")[0].dashboards["home"]
    assert len(home) == len(before) + len(kpis) + len(charts)
    assert home[len(before)].label.zh == "数"
    assert not charts or (home[-1].chart and home[-1].label is None)
    last = len(home) - 1
    editor.move_dashboard_item(doc, "home", last, -1)
    moved = check_text(editor.dump(doc), f"{name}.yaml")[0].dashboards["home"]
    assert moved[last - 1] == home[last] and moved[last] == home[last - 1]
    editor.move_dashboard_item(doc, "home", last - 1, 1)
    editor.move_dashboard_item(doc, "home", last, 1)  # past the end: nothing
    editor.move_dashboard_item(doc, "home", 0, -1)
    assert editor.dump(doc) == added
    for _ in range(len(kpis) + len(charts)):
        editor.remove_dashboard_item(doc, "home", len(before))
    if not before:
        del doc["dashboards"]
    assert editor.dump(doc) == editor.dump(editor.load(text))
    with pytest.raises(editor.EditError):
        editor.remove_dashboard_item(doc, "home", 999)
    with pytest.raises(editor.EditError):
        editor.add_dashboard_item(doc, "home", {"label": {"en": "x"}})


def test_moving_a_dashboard_item_takes_its_comment_along():
    text = ("version: 1\nentities: {}\ndashboards:\n  home:\n"
            "    - {kpi: a.count}  # first\n    - {kpi: b.count}  # second\n")
    doc = editor.load(text)
    editor.move_dashboard_item(doc, "home", 0, 1)
    lines = [ln.strip() for ln in editor.dump(doc).splitlines() if "kpi" in ln]
    assert lines[0].startswith("- {kpi: b.count}") and lines[0].endswith("# second")
    assert lines[1].startswith("- {kpi: a.count}") and lines[1].endswith("# first")


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=IDS)
def test_refused_dashboard_items_land_on_their_row(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    doc = editor.load(text)
    at = len(spec.dashboards.get("home", ()))
    editor.add_dashboard_item(doc, "home", {"chart": f"{spec.entities[0].name}.no_such_chart"})
    editor.add_dashboard_item(doc, "home", {"kpi": f"{spec.entities[0].name}.sum:nowhere"})
    found = problems_at(editor.dump(doc), name)
    assert ("SD-E170", f"dashboards.home[{at}]") in found
    assert ("SD-E171", f"dashboards.home[{at + 1}]") in found


def test_chart_view_and_dashboard_paths_map_to_their_controls():
    assert editor.control_for("entities.customer.charts[3].group_by") == \
        "entities.customer.charts[3]"
    assert editor.control_for("entities.customer.charts") == "entities.customer.charts"
    assert editor.control_for("entities.loan.views.kanban.card[1]") == \
        "entities.loan.views.kanban"
    assert editor.control_for("entities.loan.views.calendar") == "entities.loan.views.calendar"
    assert editor.control_for("entities.loan.views.gantt") == "entities.loan.views"
    assert editor.control_for("dashboards.home[2].chart") == "dashboards.home[2]"
    assert editor.control_for("dashboards.home") == "dashboards.home"
