"""Designer edits as YAML transformations, generated from the schemas.

Walks both shipped schemas and a schema written here that uses every field
type: a field of every type is added to every entity, the text is checked and
read back through the real loader, then removed again; comments survive.
One scenario also applies the edit through the guarded path on a real
database and reads the new column back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from app.designer import editor
from app.designer.versions import apply_change, current_version, plan_change
from app.schema.loader import check_text
from app.schema.spec import ACTIONS, FIELD_TYPES
from app.state import state
from tests.conftest import CRM, LIBRARY

EVERY_TYPE = """\
version: 1
app:
  title: {en: Workshop, zh: 车间}
  default_locale: zh
entities:
  # people who log in
  worker:
    label: {en: Worker, zh: 工人}
    title: name
    fields:
      name: {type: string, max_length: 40, required: true, label: {en: Name, zh: 姓名}}
      account: {type: user, label: {en: Account, zh: 账号}}
      team: {type: relation, to: team, label: {en: Team, zh: 班组}}
  team:
    label: {en: Team, zh: 班组}
    title: name
    fields:
      name: {type: string, max_length: 40, required: true, label: {en: Name, zh: 名称}}
      parent: {type: relation, to: team, label: {en: Parent, zh: 上级}}
  job:
    label: {en: Job, zh: 工单}
    title: code
    fields:
      code: {type: string, max_length: 20, required: true, unique: true,
             label: {en: Code, zh: 编号}}
      notes: {type: text, label: {en: Notes, zh: 备注}}
      hours: {type: integer, min: 0, label: {en: Hours, zh: 工时}}
      cost: {type: decimal, precision: 10, scale: 2, currency: CNY, label: {en: Cost, zh: 成本}}
      urgent: {type: boolean, default: false, label: {en: Urgent, zh: 加急}}
      due: {type: date, label: {en: Due, zh: 截止日期}}
      started: {type: datetime, label: {en: Started, zh: 开始时间}}
      state: {type: enum, default: open, label: {en: State, zh: 状态},
              choices: {open: {en: Open, zh: 打开}, done: {en: Done, zh: 完成}}}
      mail: {type: email, label: {en: Mail, zh: 邮箱}}
      phone: {type: phone, sensitive: true, label: {en: Phone, zh: 电话}}
      link: {type: url, label: {en: Link, zh: 链接}}
      worker: {type: relation, to: worker, label: {en: Worker, zh: 工人}}
      helpers: {type: relation, to: worker, many: true, label: {en: Helpers, zh: 帮手}}
      approver: {type: user, label: {en: Approver, zh: 审批人}}
    list: [code, state, worker]
roles:
  lead:
    label: {en: Lead, zh: 组长}
    grants:
      job: [read, update]
"""


def schema_texts() -> list[tuple[str, str]]:
    return [(CRM.stem, CRM.read_text(encoding="utf-8")),
            (LIBRARY.stem, LIBRARY.read_text(encoding="utf-8")),
            ("every_type", EVERY_TYPE)]


def options_for(field_type: str, spec) -> dict:
    """Options of a new field of `field_type` that the checker accepts in any schema."""
    options: dict = {"type": field_type,
                     "label": {"en": f"New {field_type}", "zh": f"新{field_type}"}}
    if field_type == "enum":
        options["choices"] = {"one": editor.label("One", "一"), "two": editor.label("Two", "二")}
        options["default"] = "one"
    if field_type == "relation":
        options["to"] = spec.entities[0].name
    if field_type == "string":
        options.update(max_length=30, help={"en": "Help", "zh": "帮助"}, pattern="^[A-Z].*$")
    if field_type in ("integer", "decimal"):
        options.update(min=0, max=1000)
    return options


def types_for(spec, entity_name: str) -> list[str]:
    """Every field type; `user` only where the schema keeps its accounts (`$me` needs one)."""
    staff = next((e.name for e in spec.entities if any(f.type == "user" for f in e.fields)),
                 spec.entities[0].name)
    return [t for t in FIELD_TYPES if t != "user" or entity_name == staff]


def errors_of(text: str, name: str) -> list[str]:
    spec, problems = check_text(text, f"{name}.yaml")
    return [p.format() for p in problems if p.is_error] + ([] if spec else ["no spec"])


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=[n for n, _ in schema_texts()])
def test_every_field_type_added_to_every_entity_then_removed(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    doc = editor.load(text)
    for entity in spec.entities:
        for field_type in types_for(spec, entity.name):
            editor.set_field(doc, entity.name, f"new_{field_type}", options_for(field_type, spec))
    added = editor.dump(doc)
    assert errors_of(added, name) == []
    new_spec, _ = check_text(added, f"{name}.yaml")
    for entity in spec.entities:
        read_back = {f.name: f for f in new_spec.entity(entity.name).fields}
        for field_type in types_for(spec, entity.name):
            assert read_back[f"new_{field_type}"].type == field_type
        assert read_back["new_enum"].choices[0].key == "one"
        assert read_back["new_string"].max_length == 30
    for entity in spec.entities:
        for field_type in types_for(spec, entity.name):
            editor.remove_field(doc, entity.name, f"new_{field_type}")
    assert editor.dump(doc) == editor.dump(editor.load(text))
    # comments of the file are kept by every edit
    for line in (ln for ln in text.splitlines() if ln.strip().startswith("# ")):
        assert line.strip() in added


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=[n for n, _ in schema_texts()])
def test_field_options_edited_in_place_keep_unknown_options(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    doc = editor.load(text)
    for entity in spec.entities:
        for field in entity.fields:
            if field.type in ("string", "text", "email", "phone", "url"):
                editor.set_field(doc, entity.name, field.name, {
                    "type": field.type, "label": {"en": field.label.en + "!", "zh": field.label.zh},
                    "required": False})
    new_spec, _ = check_text(editor.dump(doc), f"{name}.yaml")
    assert new_spec is not None
    for entity in spec.entities:
        order = [f.name for f in entity.fields]
        assert [f.name for f in new_spec.entity(entity.name).fields] == order
        for old, new in zip(entity.fields, new_spec.entity(entity.name).fields, strict=True):
            if old.type in ("string", "text", "email", "phone", "url"):
                assert new.label.en == old.label.en + "!"
                assert not new.required
                # options the form did not send are kept
                assert (new.sensitive, new.unique, new.max_length) == (
                    old.sensitive, old.unique, old.max_length)


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=[n for n, _ in schema_texts()])
def test_enum_choices_add_rename_reorder_remove(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    enums = [(e.name, f) for e in spec.entities for f in e.fields
             if f.type == "enum" and not f.computed]
    if not enums:
        pytest.skip("no enum field")
    doc = editor.load(text)
    for entity_name, field in enums:
        editor.set_choice(doc, entity_name, field.name, "extra", "Extra", "额外")
        first = field.choices[0].key
        editor.set_choice(doc, entity_name, field.name, first, "Renamed", "改名")
        editor.reorder_choices(doc, entity_name, field.name, ["extra"])
    new_spec, problems = check_text(editor.dump(doc), f"{name}.yaml")
    assert new_spec is not None, [p.format() for p in problems]
    for entity_name, field in enums:
        choices = next(f for f in new_spec.entity(entity_name).fields
                       if f.name == field.name).choices
        assert choices[0].key == "extra"
        assert [c.key for c in choices][1:] == [c.key for c in field.choices]
        assert next(c for c in choices if c.key == field.choices[0].key).label.zh == "改名"
        editor.remove_choice(doc, entity_name, field.name, "extra")
    again, _ = check_text(editor.dump(doc), f"{name}.yaml")
    for entity_name, field in enums:
        keys = [c.key for c in next(f for f in again.entity(entity_name).fields
                                    if f.name == field.name).choices]
        assert keys == [c.key for c in field.choices]


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=[n for n, _ in schema_texts()])
def test_role_grid_and_data_scope_from_the_pickers(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    doc = editor.load(text)
    editor.add_role(doc, "designer_probe", "Probe", "探针")
    grid = {e.name: list(ACTIONS) for e in spec.entities}
    editor.set_grants(doc, "designer_probe", grid)
    values = editor.scope_values(spec)
    for entity in spec.entities:
        paths = editor.scope_paths(spec, entity.name)
        assert paths, entity.name
        user_paths = [p for p in paths if _leaf(spec, entity.name, p).type == "user"]
        if user_paths:
            editor.set_row_rule(doc, "designer_probe", entity.name, user_paths[0], "eq", "$user")
    text2 = editor.dump(doc)
    assert errors_of(text2, name) == []
    new_spec, _ = check_text(text2, f"{name}.yaml")
    probe = next(r for r in new_spec.roles if r.name == "designer_probe")
    assert probe.label.zh == "探针"
    assert "$user" in values
    editor.remove_role(doc, "designer_probe")
    assert editor.dump(doc) == editor.dump(editor.load(text))


def _leaf(spec, entity_name: str, path: str):
    entity = spec.entity(entity_name)
    parts = path.split(".")
    for part in parts[:-1]:
        entity = spec.entity(next(f for f in entity.fields if f.name == part).to)
    return next(f for f in entity.fields if f.name == parts[-1])


def test_manager_scope_of_the_crm_is_offered_by_the_pickers():
    spec, _ = check_text(CRM.read_text(encoding="utf-8"), "crm.yaml")
    assert "owner.department" in editor.scope_paths(spec, "customer")
    assert "$me.department" in editor.scope_values(spec)
    doc = editor.load(CRM.read_text(encoding="utf-8"))
    editor.add_role(doc, "sales_director", "Sales director", "销售总监")
    editor.set_grants(doc, "sales_director", {"customer": ["read", "update"]})
    editor.set_row_rule(doc, "sales_director", "customer", "owner.department", "under",
                        "$me.department")
    assert "customer: {owner.department: {under: $me.department}}" in editor.dump(doc)
    assert errors_of(editor.dump(doc), "crm") == []


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=[n for n, _ in schema_texts()])
def test_entity_add_label_remove_and_list_settings(name, text):
    spec, _ = check_text(text, f"{name}.yaml")
    doc = editor.load(text)
    editor.add_entity(doc, "designer_thing", "Thing", "物品", "Things", "物品管理")
    editor.set_field(doc, "designer_thing", "size",
                     {"type": "integer", "label": {"en": "Size", "zh": "大小"}})
    editor.set_list_setting(doc, "designer_thing", "list", ["name", "size"])
    editor.set_list_setting(doc, "designer_thing", "filters", ["size"])
    editor.set_list_setting(doc, "designer_thing", "order", ["-size"])
    editor.set_field(doc, "designer_thing", "name", {"type": "string", "unique": True})
    editor.set_import_key(doc, "designer_thing", "name")
    editor.set_chart(doc, "designer_thing", {"name": "by_size", "type": "bar", "group_by": "size",
                                             "label": {"en": "By size", "zh": "按大小"}})
    editor.set_entity(doc, spec.entities[0].name, label_en="Renamed", label_zh="改名",
                      title=spec.entities[0].title)
    editor.add_role(doc, "thing_keeper", "Keeper", "保管员")
    editor.set_grants(doc, "thing_keeper", {"designer_thing": ["read", "create"]})
    text2 = editor.dump(doc)
    assert errors_of(text2, name) == []
    new_spec, _ = check_text(text2, f"{name}.yaml")
    thing = new_spec.entity("designer_thing")
    assert thing.label.zh == "物品" and thing.import_key == "name"
    assert [c.name for c in thing.charts] == ["by_size"]
    assert new_spec.entities[0].label.zh == "改名"
    editor.remove_field(doc, "designer_thing", "size")
    assert "size" not in editor.dump(doc).split("designer_thing:")[1].split("roles:")[0]
    editor.remove_entity(doc, "designer_thing")
    text3 = editor.dump(doc)
    assert "designer_thing" not in text3
    assert errors_of(text3, name) == []


def test_problem_paths_map_to_controls():
    assert editor.control_for("entities.customer.fields.wechat.max_length") == \
        "entities.customer.fields.wechat"
    assert editor.control_for("entities.customer.list[0]") == "entities.customer.list"
    assert editor.control_for("roles.operator.rows.customer") == "roles.operator"
    assert editor.control_for("entities.customer") == "entities.customer"
    assert editor.control_for("") == ""


def test_bad_names_are_refused():
    doc = editor.load(EVERY_TYPE)
    for bad in ("", "Bad", "1x", "a-b", "名字"):
        with pytest.raises(editor.EditError):
            editor.set_field(doc, "job", bad, {"type": "string"})
    with pytest.raises(editor.EditError):
        editor.set_field(doc, "nowhere", "x", {"type": "string"})


@pytest.mark.parametrize("schema", [CRM, LIBRARY], ids=["crm", "library"])
def test_every_type_field_applied_and_read_back(app_factory, schema: Path):
    """Through the guarded apply on SQLite: add one field of every type, then remove them."""
    app = app_factory(schema, "sqlite")
    with app.app_context():
        text = current_version().yaml_text
        spec = state().spec
        entity = spec.entities[-1].name
        doc = editor.load(text)
        types = types_for(spec, entity)
        for field_type in types:
            options = options_for(field_type, spec)
            options.pop("pattern", None)
            editor.set_field(doc, entity, f"new_{field_type}", options)
        added = editor.dump(doc)
        assert plan_change(added).errors == []
        version = apply_change(added, author="admin", comment="every type")
    rebuilt = __import__("app").create_app(app.extensions["schemadesk"].build_config)
    with rebuilt.app_context():
        assert current_version().number == version.number
        table = state().spec.entity(entity)
        assert {f"new_{t}" for t in types} <= {f.name for f in table.fields}
        columns = {c["name"] for c in sa.inspect(state().db.engine).get_columns(entity)}
        assert {"new_string", "new_enum", "new_relation_id", "new_decimal"} <= columns
        for field_type in types:
            editor.remove_field(doc, entity, f"new_{field_type}")
        removed = editor.dump(doc)
        plan = plan_change(removed)
        assert plan.confirmations
        apply_change(removed, author="admin", comment="remove", confirmations=plan.confirmations)


@pytest.mark.parametrize(("name", "text"), schema_texts(), ids=[n for n, _ in schema_texts()])
def test_parts_shown_as_yaml_round_trip_unchanged(name, text):
    """Charts, views, workflow, dashboards, reminders: the snippet the page shows, saved back
    unchanged, gives the same schema."""
    from app.designer.views import _part_yaml, _top_yaml

    doc = editor.load(text)
    for key in editor.TOP_LEVEL_PARTS:
        editor.replace_top_level(doc, key, _top_yaml(doc, key))
    for entity_name in list(editor.entities(doc)):
        for key in ("charts", "views", "workflow"):
            editor.replace_part(doc, entity_name, key, _part_yaml(doc, entity_name, key))
    before, _ = check_text(text, f"{name}.yaml")
    after, problems = check_text(editor.dump(doc), f"{name}.yaml")
    assert after is not None, [p.format() for p in problems]
    from dataclasses import replace

    assert replace(after, digest=before.digest) == before
    with pytest.raises(editor.EditError):
        editor.replace_top_level(doc, "entities", "")
