"""Renaming a field key in the designer keeps its values: the column is renamed, not dropped.

The editor renames the key (place and comment kept), writes `renamed_from`, and
moves the entity's mentions (list settings, charts, views, row rules, KPIs);
the plan says "rename column … (values kept)" and needs no typed confirmation;
the applied revision renames the column on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.designer import editor
from app.designer.versions import apply_change, current_version, plan_change
from app.migrate import plan
from app.schema.loader import check_text
from app.state import state
from tests.conftest import BACKENDS, CRM, LIBRARY
from tests.designer.test_editor import EVERY_TYPE
from tests.designer.test_versions import rebuilt


def renamed(text: str, entity: str, old: str, new: str) -> str:
    return editor.edit(text, editor.rename_field, entity, old, new)


def test_rename_moves_the_entitys_mentions_and_keeps_the_comment() -> None:
    text = CRM.read_text(encoding="utf-8")
    out = renamed(text, "customer", "region", "area")
    spec, problems = check_text(out, str(CRM))
    assert [p for p in problems if p.code.startswith("SD-E")] == []
    customer = spec.entity("customer")
    area = next(f for f in customer.fields if f.name == "area")
    assert area.renamed_from == "region" and not customer.has_field("region")
    assert [f.name for f in customer.fields].index("area") == \
        [f.name for f in check_text(text, str(CRM))[0].entity("customer").fields].index("region")
    assert "area" in customer.list and "area" in customer.filters
    assert any(c.group_by == "area" for c in customer.charts)
    doc = editor.load(out)
    assert "region" not in editor.fields(doc, "customer")
    # nothing else in the file changed: every line that differs from the same text written
    # back unedited mentions the old or the new key
    before = editor.edit(text, lambda doc: None).splitlines()
    changed = set(out.splitlines()) ^ set(before)
    assert changed and all("region" in line or "area" in line for line in changed), changed


SCHEMAS = {"crm": CRM.read_text(encoding="utf-8"), "library": LIBRARY.read_text(encoding="utf-8"),
           "every_type": EVERY_TYPE}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_every_field_of_every_schema_can_be_renamed(name: str) -> None:
    """Generated from the schema: each field renamed alone leaves a schema the checker
    accepts (every mention followed), with the field in its place and `renamed_from` set."""
    text = SCHEMAS[name]
    spec, _ = check_text(text, "schema.yaml")
    done = 0
    for entity in spec.entities:
        for f in entity.fields:
            if f.is_many or (f.name == "parent" and entity.tree_field is not None):
                continue
            out = renamed(text, entity.name, f.name, f"{f.name}_v2")
            new_spec, problems = check_text(out, "schema.yaml")
            errors = [(p.code, p.path) for p in problems if p.code.startswith("SD-E")]
            assert errors == [], (entity.name, f.name, errors)
            moved = new_spec.entity(entity.name)
            assert [x.name for x in moved.fields] == [
                f"{x.name}_v2" if x.name == f.name else x.name for x in entity.fields]
            assert next(x for x in moved.fields if x.name == f"{f.name}_v2"
                        ).renamed_from == f.name
            done += 1
    assert done >= 10


def test_rename_refuses_a_taken_or_bad_key() -> None:
    text = CRM.read_text(encoding="utf-8")
    with pytest.raises(editor.EditError):
        renamed(text, "customer", "region", "name")
    with pytest.raises(editor.EditError):
        renamed(text, "customer", "region", "Bad-Key")
    with pytest.raises(editor.EditError):
        renamed(text, "customer", "no_such_field", "area")


@pytest.mark.parametrize("backend", BACKENDS)
def test_applied_rename_keeps_the_values(app_factory, backend) -> None:
    app = app_factory(CRM, backend)
    with app.app_context():
        table = state().models.table("customer")
        with state().db.engine.begin() as conn:
            conn.execute(sa.insert(table).values(name="改名测试客户", kind="company", points=0,
                                                 region="east", remark="留下的备注"))
        new_text = renamed(current_version().yaml_text, "customer", "remark", "memo")
        new_text = editor.edit(new_text, editor.rename_field, "customer", "region", "area")
        change = plan_change(new_text)
        assert not change.errors
        texts = [s.text for s in change.steps]
        assert "rename column customer.remark to memo (values kept)" in texts
        assert "rename column customer.region to area (values kept)" in texts
        assert not any(s.destructive for s in change.steps if "customer.re" in s.text)
        assert change.confirmations == []
        apply_change(new_text, author="admin", comment="rename")
    app2 = rebuilt(app)
    with app2.app_context():
        assert plan() == []
        table = state().models.table("customer")
        with state().db.engine.connect() as conn:
            row = conn.execute(sa.select(table.c.memo, table.c.area)
                               .where(table.c.name == "改名测试客户")).one()
        assert tuple(row) == ("留下的备注", "east")
        columns = {c["name"] for c in sa.inspect(state().db.engine).get_columns("customer")}
        assert {"memo", "area"} <= columns and not {"remark", "region"} & columns


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sealed_lookup_field_renamed_keeps_its_value_and_its_blind_index(app_factory,
                                                                            backend) -> None:
    """customer.phone is sealed with a blind index and a unique constraint on it: both
    columns are renamed, the constraint follows without a typed confirmation, and the
    number is still read back and found by its whole value."""
    from flask_login import login_user

    from app import create_app
    from app.records import records

    app = app_factory(CRM, backend)
    with app.test_request_context():
        login_user(app.appbuilder.sm.find_user("admin"))
        record_id = records("customer").create(
            {"name": "电话改名客户", "kind": "company", "phone": "13800138000"}).id
        state().db.session.commit()
        text = renamed(current_version().yaml_text, "customer", "phone", "mobile")
        change = plan_change(text)
        assert change.confirmations == [] and not change.errors
        assert "将列 customer.phone__bi 改名为 mobile__bi（保留数据）" in [
            s.text for s in change.steps]
        apply_change(text, author="admin", comment="phone -> mobile")
    app2 = create_app(app.extensions["schemadesk"].build_config)
    with app2.test_request_context():
        login_user(app2.appbuilder.sm.find_user("admin"))
        model = state().models.model("customer")
        assert state().db.session.get(model, record_id).mobile == "13800138000"
        found = state().db.session.query(model.id).filter(
            records("customer").search_clause("138 0013 8000")).all()
        assert [r.id for r in found] == [record_id]


def test_renamed_from_names_the_column_the_database_has() -> None:
    """With the applied field names known (the designer), `renamed_from` is the applied key:
    a second rename after an apply starts from the applied key, two renames in one draft keep
    the first, and a field not applied yet gets none."""
    text = CRM.read_text(encoding="utf-8")
    applied = {"region", "remark"}

    def renamed_from(out: str, field: str) -> str | None:
        spec, _ = check_text(out, "schema.yaml")
        return next(f for f in spec.entity("customer").fields if f.name == field).renamed_from

    once = editor.edit(text, editor.rename_field, "customer", "region", "area", applied)
    assert renamed_from(once, "area") == "region"
    twice = editor.edit(once, editor.rename_field, "customer", "area", "zone", applied)
    assert renamed_from(twice, "zone") == "region"  # the database still has region
    # applied as `area` (renamed_from: region left in the text), then renamed again
    later = editor.edit(once, editor.rename_field, "customer", "area", "zone", {"area"})
    assert renamed_from(later, "zone") == "area"
    added = editor.edit(text, editor.set_field, "customer", "wechat",
                        {"type": "string", "label_en": "WeChat", "label_zh": "微信"})
    new = editor.edit(added, editor.rename_field, "customer", "wechat", "weixin", applied)
    assert renamed_from(new, "weixin") is None
