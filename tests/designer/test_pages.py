"""The designer pages over HTTP: every page of both schemas answers, and a change goes
draft -> review (plan in words, typed confirmation) -> apply -> versions -> roll back.
"""

from __future__ import annotations

import re

import pytest

from app.designer.versions import current_version
from app.state import state
from tests.conftest import CRM, LIBRARY, login


@pytest.mark.parametrize("schema", [CRM, LIBRARY], ids=["crm", "library"])
def test_every_designer_page_answers_for_every_entity_and_field(app_factory, schema):
    app = app_factory(schema, "sqlite")
    with app.test_client() as client:
        login(client)
        client.get("/lang/zh")
        with app.app_context():
            entities = [(e.name, [f.name for f in e.fields]) for e in state().spec.entities]
        pages = ["/designer/", "/designer/roles", "/designer/yaml", "/designer/versions"]
        for entity, fields in entities:
            pages.append(f"/designer/entity/{entity}")
            pages.append(f"/designer/entity/{entity}/field/_new")
            pages += [f"/designer/entity/{entity}/field/{f}" for f in fields]
        for page in pages:
            response = client.get(page)
            assert response.status_code == 200, (page, response.data[:300])
        assert "设计器" in client.get("/designer/").get_data(as_text=True)


def test_operator_cannot_open_the_designer(app_factory):
    app = app_factory(CRM, "sqlite")
    with app.app_context():
        sm = app.appbuilder.sm
        sm.add_user("op_designer", "Op", "D", "op_designer@example.com",
                    [sm.find_role("operator")], password="Op-designer-pass-1!")
    with app.test_client() as client:
        login(client, "op_designer", "Op-designer-pass-1!")
        response = client.get("/designer/")
        assert response.status_code in (302, 403)
        assert client.post("/designer/discard").status_code in (302, 403)
        assert not client.get("/designer/", follow_redirects=True).get_data(
            as_text=True).count("sd-draft-bar")


def test_field_choice_role_review_apply_and_roll_back(app_factory):
    app = app_factory(CRM, "sqlite")
    with app.test_client() as client:
        login(client)
        response = client.post("/designer/entity/customer/field/_new", data={
            "name": "wechat", "type": "string", "max_length": "50", "label_zh": "微信",
            "label_en": "WeChat"})
        assert response.status_code == 302
        client.post("/designer/entity/customer/field/kind", data={
            "type": "enum", "label_zh": "类型", "label_en": "Type", "default": "company",
            "choice_key": ["person", "company"], "choice_zh": ["个人", "企业"],
            "choice_en": ["Person", "Company"], "choice_pos": ["1", "2"],
            "new_choice_key": "government", "new_choice_zh": "政府", "new_choice_en": "Government"})
        client.post("/designer/roles/add", data={"name": "sales_director", "label_zh": "销售总监",
                                                 "label_en": "Sales director"})
        client.post("/designer/roles/sales_director/grants", data={
            "label_zh": "销售总监", "label_en": "Sales director",
            "grant": ["customer:read", "customer:update", "employee:read"]})
        client.post("/designer/roles/sales_director/rows", data={
            "entity": "customer", "path": "owner.department", "operator": "under",
            "value": "$me.department"})
        yaml_page = client.get("/designer/yaml").get_data(as_text=True)
        assert "wechat: {type: string, max_length: 50" in yaml_page
        assert "government: {en: Government, zh: 政府}" in yaml_page
        assert "customer: {owner.department: {under: $me.department}}" in yaml_page
        review = client.get("/designer/review").get_data(as_text=True)
        assert "wechat" in review and "sd-apply" in review
        response = client.post("/designer/apply", data={"comment": "微信字段"})
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        with app.app_context():
            v2 = current_version()
        assert v2.comment == "微信字段" and "wechat" in v2.yaml_text
        versions = client.get("/designer/versions").get_data(as_text=True)
        v1_id = int(re.findall(r"/designer/versions/(\d+)/reapply", versions)[0])
        client.post(f"/designer/versions/{v1_id}/reapply")
        review = client.get("/designer/review").get_data(as_text=True)
        assert 'data-expected="wechat"' in review
        refused = client.post("/designer/apply", data={"comment": "back"})
        assert refused.status_code == 200 and "sd-refused" in refused.get_data(as_text=True)
        done = client.post("/designer/apply", data={"comment": "back", "confirm": "wechat"})
        assert done.status_code == 302
        with app.app_context():
            v3 = current_version()
        assert v3.number == v2.number + 1 and "wechat: {type: string" not in v3.yaml_text
        assert v3.backup_file
