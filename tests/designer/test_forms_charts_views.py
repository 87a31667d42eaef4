"""The chart, view and dashboard forms of the designer over HTTP, as an admin.

For both shipped schemas and a schema written here, each form posts to its
route; the admin's draft then holds the change (read back parsed) and the
checker accepts it. A refused choice (a duplicate chart name, grouping by an
encrypted field, a tile naming a missing chart) is shown with its code next to
the form or row it concerns, and nothing is applied: the current version is
unchanged and the review refuses the draft.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.designer import editor
from app.designer.versions import current_version, plan_change
from app.schema.loader import check_text
from tests.designer.conftest import schema_app

WORKSHOP = """\
version: 1
app:
  title: {en: Workshop, zh: 车间}
  default_locale: zh
entities:
  # who does the work
  worker:
    label: {en: Worker, zh: 工人}
    title: name
    fields:
      name: {type: string, max_length: 40, required: true, label: {en: Name, zh: 姓名}}
      account: {type: user, label: {en: Account, zh: 账号}}
  job:
    label: {en: Job, zh: 工单}
    title: code
    fields:
      code: {type: string, max_length: 20, required: true, label: {en: Code, zh: 编号}}
      hours: {type: integer, min: 0, label: {en: Hours, zh: 工时}}
      cost: {type: decimal, precision: 10, scale: 2, label: {en: Cost, zh: 成本}}
      state: {type: enum, default: open, label: {en: State, zh: 状态},
              choices: {open: {en: Open, zh: 打开}, done: {en: Done, zh: 完成}}}
      due: {type: date, label: {en: Due, zh: 截止日期}}
      finished: {type: date, label: {en: Finished, zh: 完成日期}}
      worker: {type: relation, to: worker, label: {en: Worker, zh: 工人}}
      helpers: {type: relation, to: worker, many: true, label: {en: Helpers, zh: 帮手}}
      secret: {type: string, encrypted: true, sensitive: true, label: {en: Secret, zh: 密文}}
    list: [code, state, worker]
    filters: [state, due]
roles:
  lead:
    label: {en: Lead, zh: 组长}
    grants:
      job: [read, update]
"""


@pytest.fixture(scope="module", params=["crm", "library", "workshop"])
def designer_app(request, app_factory, tmp_path_factory):
    return schema_app(request.param, "workshop", WORKSHOP, app_factory, tmp_path_factory)


def draft(app) -> str:
    """The admin's draft text, else the current version's."""
    with app.app_context():
        user = app.appbuilder.sm.find_user("admin")
        path = Path(app.instance_path) / "designer" / f"draft-{user.id}.json"
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))["text"]
        return current_version().yaml_text


def spec_of(app):
    """The checked spec of the draft; the test fails on any error."""
    spec, problems = check_text(draft(app), "draft.yaml")
    errors = [p.format() for p in problems if p.is_error]
    assert spec is not None and not errors, errors
    return spec


def entity_with_groups(spec):
    """An entity with an enum field to group by (every schema here has one)."""
    return next(e for e in spec.entities if any(f.type == "enum" for f in e.fields))


def section(html: str, element_id: str) -> str:
    """The HTML of the panel or block with `id="element_id"` up to the next panel."""
    start = html.index(f'id="{element_id}"')
    end = html.find('<div class="panel panel-default"', start)
    return html[start:end if end > 0 else None]


def applied_text(app) -> str:
    with app.app_context():
        return current_version().yaml_text


def refused(app) -> bool:
    with app.app_context():
        return bool(plan_change(draft(app)).errors)


def test_chart_added_edited_and_removed_from_the_chart_form(designer_app, admin):
    spec = spec_of(designer_app)
    entity = entity_with_groups(spec)
    enum = next(f.name for f in entity.fields if f.type == "enum")
    numbers = editor.measure_fields(entity)
    page = admin.get(f"/designer/entity/{entity.name}").get_data(as_text=True)
    form = section(page, "charts")
    assert f'value="{enum}"' in form and "sd-chart-form" in form
    assert 'value="created_at" data-date="1"' in form
    for bad in (f.name for f in entity.fields if f.encrypted or f.is_many or f.sensitive):
        assert f'<option value="{bad}" data-date' not in form
    measure = f"sum:{numbers[0]}" if numbers else "count"
    response = admin.post(f"/designer/entity/{entity.name}/charts", data={
        "name": "by_probe", "type": "pie", "group_by": enum, "period": "month",
        "measure": measure, "label_zh": "按探针", "label_en": "By probe"})
    assert response.status_code == 302 and response.location.endswith("#charts")
    chart = spec_of(designer_app).entity(entity.name).charts[-1]
    assert (chart.name, chart.type, chart.group_by, chart.period) == ("by_probe", "pie", enum, None)
    assert chart.label.zh == "按探针"
    assert (chart.measure.func, chart.measure.field) == (
        ("sum", numbers[0]) if numbers else ("count", None))
    raw = editor.load(draft(designer_app))["entities"][entity.name]["charts"][-1]
    assert list(raw) == ["name", "type", "group_by"] + (["measure"] if numbers else []) + ["label"]
    edit_page = admin.get(f"/designer/entity/{entity.name}?chart=by_probe").get_data(as_text=True)
    assert 'name="original" value="by_probe"' in edit_page
    admin.post("/designer/dashboards/home/items", data={"kind": "chart",
                                                         "chart": f"{entity.name}.by_probe"})
    admin.post(f"/designer/entity/{entity.name}/charts", data={
        "original": "by_probe", "name": "per_month", "type": "line", "group_by": "created_at",
        "period": "quarter", "measure": "count", "label_zh": "每季度", "label_en": ""})
    spec = spec_of(designer_app)
    chart = spec.entity(entity.name).charts[-1]
    assert (chart.name, chart.type, chart.group_by, chart.period) == (
        "per_month", "line", "created_at", "quarter")
    assert [c.name for c in spec.entity(entity.name).charts].count("by_probe") == 0
    assert spec.dashboards["home"][-1].chart == "per_month"  # the tile followed the rename
    admin.post(f"/designer/entity/{entity.name}/charts/per_month/remove")
    spec = spec_of(designer_app)
    assert "per_month" not in [c.name for c in spec.entity(entity.name).charts]
    assert all(i.chart != "per_month" for i in spec.dashboards.get("home", ()))
    assert admin.get(f"/designer/entity/{entity.name}/charts/x/remove").status_code == 405


def test_a_kpi_chart_groups_by_nothing(designer_app, admin):
    entity = spec_of(designer_app).entities[0]
    admin.post(f"/designer/entity/{entity.name}/charts", data={
        "name": "total", "type": "kpi", "group_by": "created_at", "period": "day",
        "measure": "count", "label_zh": "总数", "label_en": "Total"})
    chart = spec_of(designer_app).entity(entity.name).charts[-1]
    assert (chart.name, chart.type, chart.group_by, chart.period) == ("total", "kpi", None, None)


def test_refused_chart_choices_show_their_code_at_the_chart_and_apply_nothing(designer_app,
                                                                              admin):
    before = applied_text(designer_app)
    spec = spec_of(designer_app)
    entity = entity_with_groups(spec)
    enum = next(f.name for f in entity.fields if f.type == "enum")
    existing = entity.charts[0].name if entity.charts else None
    if existing is None:
        admin.post(f"/designer/entity/{entity.name}/charts", data={
            "name": "first", "type": "bar", "group_by": enum, "measure": "count"})
        existing = "first"
    count = len(spec_of(designer_app).entity(entity.name).charts)
    admin.post(f"/designer/entity/{entity.name}/charts", data={
        "name": existing, "type": "bar", "group_by": enum, "measure": "count"})
    page = admin.get(f"/designer/entity/{entity.name}").get_data(as_text=True)
    charts = section(page, "charts")
    duplicate_row = charts[charts.index(f'<tr id="chart-{existing}"', charts.index("<tbody>") + 1):]
    rows = re.findall(r'<tr id="chart-[^"]+".*?</tr>', charts, re.S)
    assert len(rows) == count + 1
    assert "SD-E166" in rows[-1] and "SD-E166" in duplicate_row
    assert "SD-E166" not in section(page, "views")
    assert refused(designer_app) and applied_text(designer_app) == before
    admin.post(f"/designer/entity/{entity.name}/charts/{existing}/remove",
               data={"index": str(count)})  # the row of the duplicate: the first one stays
    assert [c.name for c in spec_of(designer_app).entity(entity.name).charts].count(
        existing) == 1

    admin.post("/designer/discard")
    locked = next(e for e in spec.entities if any(f.encrypted for f in e.fields))
    secret = next(f.name for f in locked.fields if f.encrypted)
    admin.post(f"/designer/entity/{locked.name}/charts", data={
        "name": "by_secret", "type": "pie", "group_by": secret, "measure": "count"})
    page = admin.get(f"/designer/entity/{locked.name}").get_data(as_text=True)
    row = re.findall(r'<tr id="chart-by_secret".*?</tr>', section(page, "charts"), re.S)[0]
    assert "SD-E161" in row
    assert refused(designer_app) and applied_text(designer_app) == before
    review = admin.post("/designer/apply", data={"comment": "x"})
    assert review.status_code == 200 and applied_text(designer_app) == before


def test_bad_chart_name_is_refused_before_the_draft(designer_app, admin):
    entity = spec_of(designer_app).entities[0]
    response = admin.post(f"/designer/entity/{entity.name}/charts", data={
        "name": "Bad Name", "type": "kpi"}, follow_redirects=True)
    assert "“Bad Name”" in response.get_data(as_text=True)  # in the admin's language (zh)
    assert draft(designer_app) == applied_text(designer_app)


def test_kanban_and_calendar_set_and_removed_from_their_forms(designer_app, admin):
    spec = spec_of(designer_app)
    entity = entity_with_groups(spec)
    enum = next(f.name for f in entity.fields if f.type == "enum")
    cards = [f.name for f in entity.fields if not f.sensitive][:2] + ["created_at"]
    page = admin.get(f"/designer/entity/{entity.name}").get_data(as_text=True)
    kanban_form = section(page, "view-kanban")
    assert f'<option value="{enum}"' in kanban_form
    non_enum = next(f.name for f in entity.fields if f.type != "enum")
    assert f'<option value="{non_enum}"' not in kanban_form.split("Cards")[0].split("卡片")[0]
    admin.post(f"/designer/entity/{entity.name}/views/kanban",
               data={"group_by": enum, "card": cards})
    dates = editor.date_fields(entity)
    admin.post(f"/designer/entity/{entity.name}/views/calendar",
               data={"date": dates[0], "title": cards[0], "end": ""})
    views = spec_of(designer_app).entity(entity.name).views
    assert views.kanban.group_by == enum and list(views.kanban.card) == cards
    assert (views.calendar.date, views.calendar.title, views.calendar.end) == (
        dates[0], cards[0], None)
    raw = editor.load(draft(designer_app))["entities"][entity.name]["views"]
    assert list(raw["kanban"]) == ["group_by", "card"] and list(raw["calendar"]) == [
        "date", "title"]
    admin.post(f"/designer/entity/{entity.name}/views/kanban/remove")
    admin.post(f"/designer/entity/{entity.name}/views/calendar/remove")
    views = spec_of(designer_app).entity(entity.name).views
    assert views.kanban is None and views.calendar is None
    assert "views" not in editor.load(draft(designer_app))["entities"][entity.name]


def test_refused_view_choices_show_their_code_at_their_form(designer_app, admin):
    before = applied_text(designer_app)
    entity = entity_with_groups(spec_of(designer_app))
    non_enum = next(f.name for f in entity.fields if f.type not in ("enum", "date", "datetime"))
    admin.post(f"/designer/entity/{entity.name}/views/kanban", data={"group_by": non_enum})
    admin.post(f"/designer/entity/{entity.name}/views/calendar", data={"date": non_enum})
    page = admin.get(f"/designer/entity/{entity.name}").get_data(as_text=True)
    assert "SD-E202" in section(page, "view-kanban").split("view-calendar")[0]
    assert "SD-E204" in section(page, "view-calendar")
    assert "SD-E204" not in section(page, "view-kanban").split("view-calendar")[0]
    assert refused(designer_app) and applied_text(designer_app) == before
    assert admin.post(f"/designer/entity/{entity.name}/views/gantt",
                      data={"date": "x"}).status_code == 302
    assert "“gantt”" in admin.get("/designer/").get_data(as_text=True)


def test_dashboard_tiles_added_moved_and_removed(designer_app, admin):
    spec = spec_of(designer_app)
    before = list(spec.dashboards.get("home", ()))
    page = admin.get("/designer/").get_data(as_text=True)
    board = section(page, "dashboards")
    kpis = [ref for _e, refs in editor.kpi_refs(spec) for ref in refs]
    charts = [ref for _e, refs in editor.chart_refs(spec) for ref in refs]
    assert all(f'value="{ref}"' in board for ref in kpis + charts)
    assert len(re.findall(r'class="sd-dashboard-item"', board)) == len(before)
    admin.post("/designer/dashboards/home/items", data={
        "kind": "kpi", "kpi": kpis[-1], "label_zh": "指标", "label_en": "Figure"})
    if charts:
        admin.post("/designer/dashboards/home/items", data={"kind": "chart", "chart": charts[0]})
    home = spec_of(designer_app).dashboards["home"]
    added = len(home) - len(before)
    assert added == (2 if charts else 1)
    kpi_tile = home[len(before)]
    assert kpi_tile.label.zh == "指标" and f"{kpi_tile.entity}." in kpis[-1]
    last = len(home) - 1
    admin.post(f"/designer/dashboards/home/items/{last}/move", data={"direction": "up"})
    moved = spec_of(designer_app).dashboards["home"]
    assert moved[last - 1] == home[last] and moved[last] == home[last - 1]
    admin.post(f"/designer/dashboards/home/items/{last - 1}/move", data={"direction": "down"})
    assert spec_of(designer_app).dashboards["home"] == home
    for _ in range(added):
        admin.post(f"/designer/dashboards/home/items/{len(before)}/remove")
    assert list(spec_of(designer_app).dashboards.get("home", ())) == before
    assert admin.get("/designer/dashboards/home/items/0/remove").status_code == 405


def test_refused_dashboard_tile_shows_its_code_on_its_row(designer_app, admin):
    before = applied_text(designer_app)
    spec = spec_of(designer_app)
    at = len(spec.dashboards.get("home", ()))
    admin.post("/designer/dashboards/home/items", data={
        "kind": "chart", "chart": f"{spec.entities[0].name}.no_such_chart"})
    page = admin.get("/designer/").get_data(as_text=True)
    rows = re.findall(r'<tr class="sd-dashboard-item">.*?</tr>', section(page, "dashboards"), re.S)
    assert len(rows) == at + 1 and "SD-E170" in rows[-1]
    assert all("SD-E170" not in row for row in rows[:-1])
    assert refused(designer_app) and applied_text(designer_app) == before
    review = admin.get("/designer/review").get_data(as_text=True)
    assert "SD-E170" in review and "#dashboards" in review


def test_field_key_renamed_from_its_form_and_reviewed_as_a_rename(designer_app, admin):
    """The field page's rename form: the draft holds the new key with `renamed_from`, the
    review says the column is renamed with its values kept, and nothing needs typing."""
    spec = spec_of(designer_app)
    entity = entity_with_groups(spec)
    field = next(f for f in entity.fields if f.type == "enum" and not f.computed)
    page = admin.get(f"/designer/entity/{entity.name}/field/{field.name}")
    assert "修改键名" in page.get_data(as_text=True)
    response = admin.post(f"/designer/entity/{entity.name}/field/{field.name}/rename",
                          data={"new_name": f"{field.name}_new"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/field/{field.name}_new")
    renamed = spec_of(designer_app).entity(entity.name)
    assert not renamed.has_field(field.name)
    assert next(f for f in renamed.fields if f.name == f"{field.name}_new"
                ).renamed_from == field.name
    review = admin.get("/designer/review").get_data(as_text=True)
    assert f"将列 {entity.name}.{field.name} 改名为 {field.name}_new（保留数据）" in review
    assert not refused(designer_app)
    # a taken key is refused with a message, the draft unchanged
    taken = next(f.name for f in renamed.fields if f.name != f"{field.name}_new")
    before = draft(designer_app)
    admin.post(f"/designer/entity/{entity.name}/field/{field.name}_new/rename",
               data={"new_name": taken})
    assert draft(designer_app) == before
    assert admin.get(f"/designer/entity/{entity.name}/field/{field.name}/rename"
                     ).status_code == 405
