"""The workflow and reminder forms of the designer over HTTP, as an admin (zh pages).

For both shipped schemas and a schema written here, each form posts to its route;
the admin's draft then holds what was chosen (read back parsed) and the checker
accepts it. A refused choice (a state that is not a choice, a field that does not
exist, a reminder for someone who cannot sign in) is shown with its code on the
row it concerns, and nothing is applied: the current version is unchanged and the
review refuses the draft.
"""

from __future__ import annotations

import re

import pytest

from app.designer import editor
from tests.designer.conftest import schema_app
from tests.designer.test_forms_charts_views import applied_text, draft, refused, section, spec_of

DESK = """\
version: 1
app:
  title: {en: Help desk, zh: 服务台}
  default_locale: zh
entities:
  # the people who answer
  agent:
    label: {en: Agent, zh: 坐席}
    title: name
    fields:
      name: {type: string, max_length: 40, required: true, label: {en: Name, zh: 姓名}}
      account: {type: user, label: {en: Account, zh: 账号}}
  ticket:
    label: {en: Ticket, zh: 工单}
    title: subject
    fields:
      subject: {type: string, max_length: 80, required: true, label: {en: Subject, zh: 主题}}
      stage: {type: enum, default: open, label: {en: Stage, zh: 阶段},
              choices: {open: {en: Open, zh: 待处理}, working: {en: Working, zh: 处理中},
                        done: {en: Done, zh: 已完成}}}
      grade: {type: enum, sensitive: true, label: {en: Grade, zh: 等级},
              choices: {a: {en: A, zh: 甲}, b: {en: B, zh: 乙}}}
      owner: {type: relation, to: agent, label: {en: Owner, zh: 负责人}}
      due: {type: date, label: {en: Due, zh: 截止日期}}
      answer: {type: text, label: {en: Answer, zh: 答复}}
    list: [subject, stage, owner]
    filters: [stage, due]
roles:
  agent:
    label: {en: Agent, zh: 坐席}
    grants:
      ticket: [read, update]
"""


@pytest.fixture(scope="module", params=["crm", "library", "desk"])
def designer_app(request, app_factory, tmp_path_factory):
    return schema_app(request.param, "desk", DESK, app_factory, tmp_path_factory)


def free_entity(app) -> tuple[str, str, list[str]]:
    """An entity without a workflow that can have one: (entity, its state field, states)."""
    spec = spec_of(app)
    doc = editor.load(draft(app))
    for entity in spec.entities:
        offered = editor.state_fields(editor.entity(doc, entity.name)["fields"])
        if entity.workflow is None and offered:
            field, pairs = next(iter(offered.items()))
            return entity.name, field, [key for key, _label in pairs]
    raise AssertionError("every schema here has an entity that can have a workflow")


def back_to_current(app) -> bool:
    """True when the draft says what the current version says (laid out as the editor
    writes it)."""
    return editor.dump(editor.load(draft(app))) == editor.dump(editor.load(applied_text(app)))


def rows_of(html: str, kind: str) -> list[str]:
    """The table rows `<tr id="kind-...">` of a page, in order."""
    return re.findall(rf'<tr id="{kind}-[^"]*".*?</tr>', html, re.S)


def test_workflow_given_and_its_steps_added_edited_removed_from_the_forms(designer_app, admin):
    name, field, states = free_entity(designer_app)
    spec = spec_of(designer_app)
    entity = spec.entity(name)
    page = admin.get(f"/designer/entity/{name}").get_data(as_text=True)
    form = section(page, "workflow")
    assert "sd-workflow-form" in form and f'<option value="{field}"' in form
    for unfit in (f.name for f in entity.fields if f.type != "enum" or f.sensitive):
        assert f'<option value="{unfit}" ' not in form.split("sd-workflow-initial")[0]
    assert "sd-step-form" not in form  # steps come once the workflow has its field
    response = admin.post(f"/designer/entity/{name}/workflow",
                          data={"field": field, "initial": states[0]})
    assert response.status_code == 302 and response.location.endswith("#workflow")
    flow = spec_of(designer_app).entity(name).workflow
    assert (flow.field, flow.initial, flow.transitions) == (field, states[0], ())

    role = spec.roles[0].name
    needed = next(f.name for f in entity.fields if f.name != field and not f.computed)
    admin.post(f"/designer/entity/{name}/workflow/transitions", data={
        "name": "advance", "from": states[:2], "to": states[-1], "roles": [role],
        "requires": [needed], "comment": "required", "label_zh": "推进", "label_en": "Advance"})
    step = spec_of(designer_app).entity(name).workflow.transitions[-1]
    assert (step.name, step.sources, step.to, step.roles, step.requires, step.comment) == (
        "advance", tuple(states[:2]), states[-1], (role,), (needed,), "required")
    assert (step.label.zh, step.label.en) == ("推进", "Advance")
    page = admin.get(f"/designer/entity/{name}?transition=advance&at=0").get_data(as_text=True)
    form = section(page, "workflow")
    assert 'name="original" value="advance"' in form
    assert f'name="roles" value="{role}" checked' in form
    assert f'name="requires" value="{needed}" checked' in form

    admin.post(f"/designer/entity/{name}/workflow/transitions", data={
        "original": "advance", "index": "0", "name": "finish", "from": [states[0]],
        "to": states[1], "label_zh": "完成", "label_en": ""})
    flow = spec_of(designer_app).entity(name).workflow
    assert [(t.name, t.sources, t.to, t.roles, t.requires, t.comment) for t in
            flow.transitions] == [("finish", (states[0],), states[1], (), (), "optional")]
    admin.post(f"/designer/entity/{name}/workflow/transitions/finish/remove",
               data={"index": "0"})
    assert spec_of(designer_app).entity(name).workflow.transitions == ()
    admin.post(f"/designer/entity/{name}/workflow/remove")
    assert spec_of(designer_app).entity(name).workflow is None
    assert back_to_current(designer_app)
    for path in ("workflow", "workflow/remove", "workflow/transitions",
                 "workflow/transitions/finish/remove"):
        assert admin.get(f"/designer/entity/{name}/{path}").status_code == 405


def test_every_shipped_step_is_shown_and_saved_back_unchanged(designer_app, admin):
    """Each step of the schema is a row in words; its edit form, posted as it is filled,
    gives the same step (an approval and a condition are kept, shown read-only)."""
    spec = spec_of(designer_app)
    flows = [e for e in spec.entities if e.workflow is not None]
    assert len(flows) == (3 if any(e.name == "sales_order" for e in spec.entities) else 0)
    for entity in flows:
        page = admin.get(f"/designer/entity/{entity.name}").get_data(as_text=True)
        rows = rows_of(section(page, "workflow"), "step")
        assert len(rows) == len(entity.workflow.transitions)
        for row, step in zip(rows, entity.workflow.transitions, strict=True):
            assert f"<code>{step.name}</code>" in row and step.label.zh in row
            assert ("需审批" in row) == (step.approval is not None)
        for index, step in enumerate(entity.workflow.transitions):
            admin.post(f"/designer/entity/{entity.name}/workflow/transitions", data={
                "original": step.name, "index": str(index), "name": step.name,
                "from": list(step.sources), "to": step.to, "roles": list(step.roles),
                "requires": list(step.requires), "label_zh": step.label.zh,
                "label_en": step.label.en,
                **({"comment": "required"} if step.comment == "required" else {})})
        assert spec_of(designer_app).entity(entity.name).workflow == entity.workflow


def test_refused_step_choices_show_their_code_on_the_step_row_and_apply_nothing(designer_app,
                                                                               admin):
    before = applied_text(designer_app)
    name, field, states = free_entity(designer_app)
    admin.post(f"/designer/entity/{name}/workflow", data={"field": field, "initial": states[0]})
    admin.post(f"/designer/entity/{name}/workflow/transitions", data={
        "name": "good", "from": states[:1], "to": states[-1]})
    admin.post(f"/designer/entity/{name}/workflow/transitions", data={
        "name": "astray", "from": states[:1], "to": "no_such_state"})
    admin.post(f"/designer/entity/{name}/workflow/transitions", data={
        "name": "ghostly", "from": states[:1], "to": states[-1], "requires": ["no_such_field"]})
    page = admin.get(f"/designer/entity/{name}").get_data(as_text=True)
    good, astray, ghostly = rows_of(section(page, "workflow"), "step")
    assert "sd-problem" not in good
    assert "SD-E181" in astray and "SD-E184" not in astray
    assert "SD-E184" in ghostly and "SD-E181" not in ghostly
    assert "SD-E18" not in section(page, "charts")
    assert refused(designer_app) and applied_text(designer_app) == before
    review = admin.post("/designer/apply", data={"comment": "x"})
    assert review.status_code == 200 and applied_text(designer_app) == before
    assert f"/designer/entity/{name}" in admin.get("/designer/review").get_data(as_text=True)

    admin.post("/designer/discard")
    admin.post(f"/designer/entity/{name}/workflow", data={"field": "no_such_field",
                                                          "initial": states[0]})
    page = admin.get(f"/designer/entity/{name}").get_data(as_text=True)
    workflow_form = section(page, "workflow").split("</form>")[0]
    assert "SD-E180" in section(page, "workflow").split("sd-workflow-form")[0] + workflow_form
    assert refused(designer_app) and applied_text(designer_app) == before


def test_bad_names_and_missing_choices_are_refused_in_chinese_before_the_draft(designer_app,
                                                                               admin):
    name, _field, states = free_entity(designer_app)
    response = admin.post(f"/designer/entity/{name}/workflow/transitions", data={
        "name": "x", "from": states[:1], "to": states[-1]}, follow_redirects=True)
    assert f"{name} 还没有业务流程" in response.get_data(as_text=True)
    response = admin.post(f"/designer/entity/{name}/workflow", data={"field": "",
                                                                     "initial": ""},
                          follow_redirects=True)
    assert "请选择流程的状态字段和初始状态" in response.get_data(as_text=True)
    response = admin.post("/designer/reminders", data={
        "name": "Bad Name", "entity": name, "kind": "after", "after_field": "created_at",
        "after": "1d", "notify": "created_by"}, follow_redirects=True)
    assert "“Bad Name”" in response.get_data(as_text=True)
    response = admin.post("/designer/reminders", data={
        "name": "soon", "entity": name, "kind": "after", "after_field": "created_at",
        "after": "", "notify": "created_by"}, follow_redirects=True)
    assert "需要一个时长" in response.get_data(as_text=True)
    assert draft(designer_app) == applied_text(designer_app)


def test_reminders_added_edited_removed_from_the_reminder_form(designer_app, admin):
    spec = spec_of(designer_app)
    before = list(spec.reminders)
    page = admin.get("/designer/reminders").get_data(as_text=True)
    table = section(page, "reminders")
    assert len(rows_of(table, "reminder")) == len(before)
    for rule in before:
        assert f"<code>{rule.name}</code>" in table
    entity = next(e for e in spec.entities if any(f.type == "date" for f in e.fields))
    due = next(f.name for f in entity.fields if f.type == "date")
    person = editor.notify_paths(spec, entity)[0]
    assert f'<option value="{person}" data-entity="{entity.name}"' in table
    role = spec.roles[0].name
    response = admin.post("/designer/reminders", data={
        "name": "probe_due", "entity": entity.name, "kind": "date", "date": due,
        "before": "2d", "notify": person, "label_zh": "快到期：%(record)s",
        "label_en": "Due soon: %(record)s"})
    assert response.status_code == 302 and response.location.endswith("#reminders")
    admin.post("/designer/reminders", data={
        "name": "probe_new", "entity": entity.name, "kind": "after",
        "after_field": "created_at", "after": "12h", "date": due, "before": "1d",
        "notify": f"role:{role}", "label_zh": "新记录", "label_en": ""})
    rules = {r.name: r for r in spec_of(designer_app).reminders}
    assert (rules["probe_due"].date, rules["probe_due"].offset,
            rules["probe_due"].notify_path) == (due, -2 * 86400, tuple(person.split(".")))
    assert rules["probe_due"].label.zh == "快到期：%(record)s"
    assert (rules["probe_new"].date, rules["probe_new"].offset,
            rules["probe_new"].notify_role) == ("created_at", 12 * 3600, role)
    page = admin.get(f"/designer/reminders?reminder=probe_due&at={len(before)}").get_data(
        as_text=True)
    assert 'name="original" value="probe_due"' in page and 'value="2d"' in page

    admin.post("/designer/reminders", data={
        "original": "probe_due", "index": str(len(before)), "name": "probe_birthday",
        "entity": entity.name, "kind": "date", "date": due, "before": "", "yearly": "on",
        "notify": person, "label_zh": "周年", "label_en": "Anniversary"})
    rules = {r.name: r for r in spec_of(designer_app).reminders}
    assert "probe_due" not in rules
    assert (rules["probe_birthday"].yearly, rules["probe_birthday"].offset) == (True, 0)
    page = admin.get("/designer/reminders").get_data(as_text=True)
    assert "每年" in rows_of(section(page, "reminders"), "reminder")[len(before)]
    for reminder_name in ("probe_birthday", "probe_new"):
        admin.post(f"/designer/reminders/{reminder_name}/remove")
    assert list(spec_of(designer_app).reminders) == before
    assert back_to_current(designer_app)
    assert admin.get("/designer/reminders/probe_new/remove").status_code == 405
    assert "/designer/reminders" in admin.get("/designer/").get_data(as_text=True)


def test_refused_reminder_choices_show_their_code_on_the_reminder_row(designer_app, admin):
    before = applied_text(designer_app)
    spec = spec_of(designer_app)
    at = len(spec.reminders)
    entity = spec.entities[0]
    plain = next(f.name for f in entity.fields if f.type == "string")
    admin.post("/designer/reminders", data={
        "name": "tell_a_name", "entity": entity.name, "kind": "after",
        "after_field": "created_at", "after": "1d", "notify": plain})
    admin.post("/designer/reminders", data={
        "name": "on_a_name", "entity": entity.name, "kind": "date", "date": plain,
        "notify": "created_by"})
    page = admin.get("/designer/reminders").get_data(as_text=True)
    rows = rows_of(section(page, "reminders"), "reminder")
    assert len(rows) == at + 2
    assert "SD-E216" in rows[at] and "SD-E213" not in rows[at]
    assert "SD-E213" in rows[at + 1] and "SD-E216" not in rows[at + 1]
    assert all("sd-problem" not in row for row in rows[:at])
    assert refused(designer_app) and applied_text(designer_app) == before
    review = admin.get("/designer/review").get_data(as_text=True)
    assert "SD-E216" in review and "/designer/reminders#reminders" in review
    index = admin.get("/designer/").get_data(as_text=True)
    assert "SD-E216" in section(index, "part-reminders")
