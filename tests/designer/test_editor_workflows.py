"""Designer edits of workflows and reminders as YAML transformations.

For both shipped schemas and the every-type schema of test_editor: a workflow is
given to each entity that can have one, its steps are added, edited and removed,
and reminders of every kind are added, edited and removed; each text is accepted
by the checker, keeps the file's comments, and undoing the edits gives the
original back. Every shipped step and reminder read into its form and saved back
is the same rule; a refused choice is named by the checker at the row showing it.
"""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from app.designer import editor
from app.designer.views import (
    reminder_form_values,
    reminder_from_form,
    transition_from_form,
)
from app.schema.loader import check_text
from tests.designer.test_editor import errors_of, schema_texts
from tests.designer.test_editor_charts import kept_comments, problems_at

IDS = [n for n, _ in schema_texts()]


def step_form(raw) -> MultiDict:
    """The step form as the entity page fills it for a transition of the YAML document."""
    label = raw.get("label") or {}
    sources = raw["from"] if isinstance(raw["from"], list) else [raw["from"]]
    return MultiDict(
        [("name", raw["name"]), ("to", raw["to"]), ("label_en", label.get("en", "")),
         ("label_zh", label.get("zh", ""))]
        + [("from", s) for s in sources] + [("roles", r) for r in raw.get("roles") or []]
        + [("requires", f) for f in raw.get("requires") or []]
        + ([("comment", "required")] if raw.get("comment") == "required" else []))


def reminder_form(raw) -> MultiDict:
    """The reminder form as the reminders page fills it for a reminder of the document."""
    values = reminder_form_values(raw)
    label = raw.get("label") or {}
    form = MultiDict({"name": raw["name"], "entity": raw["entity"], "kind": values["kind"],
                      "date": values["date"], "before": values["before"],
                      "after_field": values["after_field"], "after": values["after"],
                      "notify": values["notify"], "label_en": label.get("en", ""),
                      "label_zh": label.get("zh", "")})
    if values["yearly"]:
        form["yearly"] = "on"
    return form


def new_step(entity, states: list[str], roles: list[str], name: str = "designer_step") -> dict:
    """A step from the first state to the last, for the first role, requiring the first
    field that is not the state."""
    field = next(f.name for f in entity.fields if f.type != "enum" and not f.computed)
    return {"name": name, "from": states[:1], "to": states[-1], "roles": roles[:1],
            "requires": [field], "comment": "required",
            "label": {"en": "Probe step", "zh": "探针步骤"}}


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=IDS)
def test_workflow_given_steps_added_edited_removed_then_undone(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    roles = [r.name for r in spec.roles]
    doc = editor.load(text)
    given: list[str] = []
    for entity in spec.entities:
        fields_map = editor.entity(doc, entity.name)["fields"]
        choices = editor.state_fields(fields_map)
        if entity.workflow is None and choices:
            field, pairs = next(iter(choices.items()))
            states = [key for key, _label in pairs]
            editor.set_workflow(doc, entity.name, field, states[0])
            given.append(entity.name)
        elif entity.workflow is not None:
            states = [c.key for c in entity.field(entity.workflow.field).choices]
        else:
            continue
        editor.add_transition(doc, entity.name, new_step(entity, states, roles))
    assert given or name == "crm"  # every schema here has an entity to give a workflow
    added = editor.dump(doc)
    assert errors_of(added, name) == []
    assert kept_comments(text, added)
    new_spec, _ = check_text(added, f"{name}.yaml")
    for entity in spec.entities:
        flow = new_spec.entity(entity.name).workflow
        if flow is None:
            continue
        step = flow.transitions[-1]
        assert (step.name, step.roles, step.comment, step.label.zh) == (
            "designer_step", tuple(roles[:1]), "required", "探针步骤")
        if entity.name in given:
            assert (step.sources, step.to) == ((flow.initial,), flow.transitions[-1].to)
        editor.replace_transition(doc, entity.name, "designer_step", {
            "name": "designer_renamed", "from": list(step.sources), "to": step.to,
            "roles": [], "requires": [], "comment": None, "label": {"en": "Renamed", "zh": ""}})
    edited = editor.dump(doc)
    assert errors_of(edited, name) == []
    edited_spec, _ = check_text(edited, f"{name}.yaml")
    for entity in spec.entities:
        flow = edited_spec.entity(entity.name).workflow
        if flow is None:
            continue
        step = flow.transitions[-1]
        assert (step.name, step.roles, step.requires, step.comment) == (
            "designer_renamed", (), (), "optional")
        editor.remove_transition(doc, entity.name, "designer_renamed")
    for entity_name in given:
        editor.remove_workflow(doc, entity_name)
    assert editor.dump(doc) == editor.dump(editor.load(text))


def test_a_new_workflow_is_written_field_initial_then_its_steps():
    spec, _ = check_text(schema_texts()[2][1], "every_type.yaml")
    doc = editor.load(schema_texts()[2][1])
    editor.set_workflow(doc, "job", "state", "open")
    editor.add_transition(doc, "job", {"name": "finish", "from": ["open"], "to": "done",
                                       "roles": ["lead"], "requires": ["hours"],
                                       "comment": "required", "label": {"en": "Finish",
                                                                        "zh": "完工"}})
    editor.add_transition(doc, "job", {"name": "reopen", "from": ["done", "open"],
                                       "to": "open", "label": {"en": "", "zh": ""}})
    text = editor.dump(doc)
    assert ("    workflow:\n      field: state\n      initial: open\n      transitions:\n"
            "      - {name: finish, from: open, to: done, roles: [lead], requires: [hours], "
            "comment: required, label: {en: Finish, zh: 完工}}\n"
            "      - {name: reopen, from: [done, open], to: open}\n") in text
    editor.set_workflow(doc, "job", "state", "done")  # the steps stay
    flow = check_text(editor.dump(doc), "x.yaml")[0].entity("job").workflow
    assert flow.initial == "done" and [t.name for t in flow.transitions] == ["finish", "reopen"]
    assert spec.entity("job").workflow is None


def test_editing_a_step_keeps_its_approval_condition_layout_and_comments():
    text = """\
version: 1
entities:
  doc:
    label: {en: Doc, zh: 文档}
    title: name
    fields:
      name: {type: string, max_length: 20, label: {en: Name, zh: 名称}}
      amount: {type: integer, label: {en: Amount, zh: 金额}}
      state: {type: enum, label: {en: State, zh: 状态}, choices: {a: {en: A, zh: 甲},
              p: {en: P, zh: 审}, b: {en: B, zh: 乙}}}
    workflow:
      field: state
      initial: a
      transitions:
        - name: send     # the approval step
          from: a
          to: b
          when: {amount: {gt: 10}}
          approval: {pending: p, levels: [{role: boss}]}  # one level
        # then back
        - {name: back, from: b, to: a, comment: required}  # sent back
roles:
  boss: {label: {en: Boss, zh: 老板}, grants: {doc: [read, update]}}
"""
    doc = editor.load(text)
    editor.replace_transition(doc, "doc", "send", {
        "name": "submit", "from": ["a"], "to": "b", "roles": ["boss"], "requires": ["amount"],
        "label": {"en": "Submit", "zh": "提交"}})
    editor.replace_transition(doc, "doc", "back", transition_from_form(MultiDict(
        [("name", "back"), ("from", "b"), ("to", "a"), ("label_zh", "退回")])))
    after = editor.dump(doc)
    assert errors_of(after, "doc") == []
    assert "# the approval step" in after and "# one level" in after
    assert "# then back" in after and "# sent back" in after
    lines = [line.strip() for line in after.splitlines()]
    assert "- name: submit     # the approval step" in lines  # still a block mapping
    assert next(ln for ln in lines if ln.startswith("approval:")).endswith("# one level")
    assert next(ln for ln in lines if ln.startswith("- {name: back")).startswith(
        "- {name: back, from: b, to: a, label: {zh: 退回}}")
    assert next(ln for ln in lines if ln.startswith("- {name: back")).endswith("# sent back")
    flow = check_text(after, "doc.yaml")[0].entity("doc").workflow
    submit, back = flow.transitions
    assert submit.approval is not None and submit.approval.pending == "p"
    assert submit.when is not None and submit.requires == ("amount",)
    assert (submit.roles, submit.label.zh) == (("boss",), "提交")
    assert back.comment == "optional"
    keys = list(editor.load(after)["entities"]["doc"]["workflow"]["transitions"][0])
    assert keys == ["name", "from", "to", "roles", "requires", "when", "label", "approval"]


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=IDS)
def test_every_shipped_step_survives_the_step_form(name, text):
    """The form offers everything the schemas' steps use but `when` and `approval`, which
    the editor keeps: a step read into the form and saved back is the same step."""
    spec, _ = check_text(text, f"{name}.yaml")
    doc = editor.load(text)
    for entity in spec.entities:
        if entity.workflow is None:
            continue
        raws = editor.entity(doc, entity.name)["workflow"]["transitions"]
        for index, raw in enumerate(list(raws)):
            editor.replace_transition(doc, entity.name, raw["name"],
                                      transition_from_form(step_form(raw)), index)
    after, problems = check_text(editor.dump(doc), f"{name}.yaml")
    assert after is not None, [p.format() for p in problems]
    for entity in spec.entities:
        assert after.entity(entity.name).workflow == entity.workflow
    assert kept_comments(text, editor.dump(doc))
    if name == "crm":
        assert sum(e.workflow is not None for e in spec.entities) == 3


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=IDS)
def test_every_shipped_reminder_survives_the_reminder_form(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    doc = editor.load(text)
    for index, raw in enumerate(list(doc.get("reminders") or [])):
        editor.replace_reminder(doc, raw["name"], reminder_from_form(reminder_form(raw)), index)
    after, problems = check_text(editor.dump(doc), f"{name}.yaml")
    assert after is not None, [p.format() for p in problems]
    assert after.reminders == spec.reminders
    assert kept_comments(text, editor.dump(doc))
    assert len(spec.reminders) == {"crm": 3, "library": 1, "every_type": 0}[name]


def new_reminders(spec, entity) -> list[dict]:
    """Reminders of every kind the form makes for an entity: before a date (yearly on a
    date field), after created_at, for a person field and for a role."""
    dates = [f for f in entity.fields if f.type in ("date", "datetime")]
    people = editor.notify_paths(spec, entity)
    role = spec.roles[0].name if spec.roles else None
    made = []
    if dates:
        made.append({"name": f"{entity.name}_before", "entity": entity.name,
                     "date": dates[0].name, "before": "2h", "notify": people[0],
                     "label": {"en": "Soon: %(record)s", "zh": "即将到期：%(record)s"}})
        yearly = next((f for f in dates if f.type == "date"), None)
        if yearly is not None:
            made.append({"name": f"{entity.name}_yearly", "entity": entity.name,
                         "date": yearly.name, "yearly": True, "notify": people[-1]})
    made.append({"name": f"{entity.name}_after", "entity": entity.name,
                 "after": {"created_at": "3d"}, "notify": {"role": role} if role else people[0],
                 "label": {"en": "", "zh": "三天了"}})
    return made


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=IDS)
def test_reminders_added_edited_removed_then_undone(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    doc = editor.load(text)
    made = [r for entity in spec.entities for r in new_reminders(spec, entity)]
    for reminder in made:
        editor.add_reminder(doc, reminder)
    added = editor.dump(doc)
    assert errors_of(added, name) == []
    assert kept_comments(text, added)
    rules = {r.name: r for r in check_text(added, f"{name}.yaml")[0].reminders}
    for reminder in made:
        rule = rules[reminder["name"]]
        assert rule.entity == reminder["entity"]
        if "after" in reminder:
            assert (rule.date, rule.offset) == ("created_at", 3 * 86400)
        else:
            assert rule.date == reminder["date"] and rule.yearly == bool(reminder.get("yearly"))
        notify = reminder["notify"]
        assert (rule.notify_role == notify["role"]) if isinstance(notify, dict) else (
            ".".join(rule.notify_path) == notify)
    for reminder in made:
        editor.replace_reminder(doc, reminder["name"], reminder | {
            "name": reminder["name"] + "_x", "before": "1w" if "date" in reminder else None})
    edited = editor.dump(doc)
    assert errors_of(edited, name) == []
    rules = {r.name: r for r in check_text(edited, f"{name}.yaml")[0].reminders}
    for reminder in made:
        if "before" in reminder:
            assert rules[reminder["name"] + "_x"].offset == -7 * 86400
    for reminder in made:
        editor.remove_reminder(doc, reminder["name"] + "_x")
    assert editor.dump(doc) == editor.dump(editor.load(text))


def test_editing_a_reminder_keeps_its_condition_and_comment():
    text = schema_texts()[0][1]
    doc = editor.load(text)
    index = next(i for i, r in enumerate(doc["reminders"]) if r["name"] == "service_request_sla")
    editor.replace_reminder(doc, "service_request_sla", {
        "name": "sla", "entity": "service_request", "after": {"created_at": "48h"},
        "notify": {"role": "manager"}, "label": {"en": "Late", "zh": "超时"}}, index)
    after = editor.dump(doc)
    assert errors_of(after, "crm") == []
    assert kept_comments(text, after)
    raw = editor.load(after)["reminders"][index]
    assert list(raw) == ["name", "entity", "after", "when", "notify", "label"]
    rule = next(r for r in check_text(after, "crm.yaml")[0].reminders if r.name == "sla")
    assert rule.offset == 48 * 3600 and rule.when is not None and rule.notify_role == "manager"


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=IDS)
def test_refused_step_and_reminder_choices_land_on_their_row(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    entity = next(e for e in spec.entities if e.workflow is not None or editor.state_fields(
        editor.entity(editor.load(text), e.name)["fields"]))
    doc = editor.load(text)
    if entity.workflow is None:
        field, pairs = next(iter(editor.state_fields(editor.entity(doc, entity.name)[
            "fields"]).items()))
        editor.set_workflow(doc, entity.name, field, pairs[0][0])
        states = [k for k, _label in pairs]
    else:
        states = [c.key for c in entity.field(entity.workflow.field).choices]
    at = len(entity.workflow.transitions) if entity.workflow else 0
    path = f"entities.{entity.name}.workflow.transitions"
    editor.add_transition(doc, entity.name, {"name": "to_nowhere", "from": states[:1],
                                             "to": "no_such_state"})
    editor.add_transition(doc, entity.name, {"name": "needs_ghost", "from": states[:1],
                                             "to": states[-1], "requires": ["no_such_field"],
                                             "roles": ["no_such_role"]})
    for _twice in range(2):
        editor.add_transition(doc, entity.name, {"name": "fine", "from": states[:1],
                                                 "to": states[-1]})
    found = problems_at(editor.dump(doc), name)
    assert ("SD-E181", f"{path}[{at}]") in found
    assert ("SD-E184", f"{path}[{at + 1}]") in found
    assert ("SD-E183", f"{path}[{at + 1}]") in found
    assert ("SD-E182", f"{path}[{at + 3}]") in found
    assert not [p for p in found if p[1] == f"{path}[{at + 2}]"]
    editor.remove_transition(doc, entity.name, "fine", at + 3)  # the duplicate only
    assert [t["name"] for t in editor.entity(doc, entity.name)["workflow"]["transitions"]
            ].count("fine") == 1
    editor.set_workflow(doc, entity.name, "no_such_field", states[0])
    assert ("SD-E180", f"entities.{entity.name}.workflow") in problems_at(editor.dump(doc),
                                                                          name)

    doc = editor.load(text)
    at = len(doc.get("reminders") or [])
    plain = next(f.name for f in spec.entities[0].fields if f.type == "string")
    editor.add_reminder(doc, {"name": "bad_notify", "entity": spec.entities[0].name,
                              "after": {"created_at": "1d"}, "notify": plain})
    editor.add_reminder(doc, {"name": "bad_date", "entity": spec.entities[0].name,
                              "date": plain, "notify": {"role": "no_such_role"}})
    editor.add_reminder(doc, {"name": "bad_time", "entity": spec.entities[0].name,
                              "after": {"created_at": "soon"}, "notify": "created_by"})
    found = problems_at(editor.dump(doc), name)
    assert ("SD-E216", f"reminders[{at}]") in found
    assert ("SD-E213", f"reminders[{at + 1}]") in found
    assert ("SD-E217", f"reminders[{at + 1}]") in found
    assert ("SD-E215", f"reminders[{at + 2}]") in found


def test_edits_that_cannot_be_made_say_why():
    text = schema_texts()[2][1]
    doc = editor.load(text)
    with pytest.raises(editor.EditError, match="no workflow"):
        editor.add_transition(doc, "job", {"name": "x", "from": ["open"], "to": "done"})
    with pytest.raises(editor.EditError, match="no workflow"):
        editor.remove_workflow(doc, "job")
    with pytest.raises(editor.EditError, match="field and its first state"):
        editor.set_workflow(doc, "job", "state", "")
    editor.set_workflow(doc, "job", "state", "open")
    with pytest.raises(editor.EditError, match="not a valid name"):
        editor.add_transition(doc, "job", {"name": "Bad Name", "from": ["open"], "to": "done"})
    with pytest.raises(editor.EditError, match="no transition 'ghost'"):
        editor.replace_transition(doc, "job", "ghost", {"name": "x", "to": "done"})
    with pytest.raises(editor.EditError, match="no transition 'ghost'"):
        editor.remove_transition(doc, "job", "ghost")
    with pytest.raises(editor.EditError, match="needs a duration"):
        editor.add_reminder(doc, {"name": "r", "entity": "job", "after": {"created_at": " "},
                                  "notify": "worker"})
    with pytest.raises(editor.EditError, match="not a valid name"):
        editor.add_reminder(doc, {"name": "", "entity": "job", "date": "due"})
    with pytest.raises(editor.EditError, match="no reminder 'ghost'"):
        editor.remove_reminder(doc, "ghost")
    assert "reminders" not in doc  # a failed removal leaves no empty list behind
    with pytest.raises(editor.EditError, match="no entity"):
        editor.set_workflow(doc, "ghost", "state", "open")


def test_pickers_offer_what_the_checker_accepts():
    text = schema_texts()[2][1].replace(
        "      approver: {type: user, label: {en: Approver, zh: 审批人}}\n",
        "      approver: {type: user, label: {en: Approver, zh: 审批人}}\n"
        "      grade: {type: enum, sensitive: true, label: {en: Grade, zh: 等级},\n"
        "              choices: {a: {en: A, zh: 甲}}}\n")
    spec, _ = check_text(text, "x.yaml")
    job = editor.entity(editor.load(text), "job")
    assert list(editor.state_fields(job["fields"])) == ["state"]
    assert [key for key, _label in editor.state_fields(job["fields"])["state"]] == ["open",
                                                                                    "done"]
    assert editor.notify_paths(spec, spec.entity("job")) == ["worker", "approver", "created_by"]
    assert editor.notify_paths(spec, spec.entity("team")) == ["created_by"]


def test_step_and_reminder_paths_map_to_their_rows():
    assert editor.control_for("entities.ticket.workflow.transitions[2].to") == \
        "entities.ticket.workflow.transitions[2]"
    assert editor.control_for("entities.ticket.workflow.transitions[0].requires[1]") == \
        "entities.ticket.workflow.transitions[0]"
    assert editor.control_for("entities.ticket.workflow.field") == "entities.ticket.workflow"
    assert editor.control_for("entities.ticket.workflow.transitions") == \
        "entities.ticket.workflow"
    assert editor.control_for("reminders[1].notify") == "reminders[1]"
    assert editor.control_for("reminders") == "reminders"


def test_a_comment_before_the_next_entity_survives_a_workflow_made_and_undone():
    """ruamel keeps the comment lines before the next entity with the last list above
    them; emptying or removing that list must not take them along."""
    text = schema_texts()[0][1]
    steps = [(editor.set_workflow, "tag", "color", "red"),
             (editor.add_transition, "tag", {"name": "go", "from": ["red"], "to": "grey"}),
             (editor.remove_transition, "tag", "go"), (editor.remove_workflow, "tag")]
    current = text
    for change, *args in steps:  # one edit a request, as the designer makes them
        current = editor.edit(current, change, *args)
    assert kept_comments(text, current)
    assert current == editor.dump(editor.load(text))
