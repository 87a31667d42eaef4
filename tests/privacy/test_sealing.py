"""Which columns are sealed, generated from the schemas: the CRM, the library example and a
small schema of our own; non-subject entities stay exactly as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.models import build_models
from app.models.types import EncryptedText, SubjectText
from app.schema import check_file
from app.state import state

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = [ROOT / "schema" / "crm.yaml", ROOT / "schema" / "examples" / "library.yaml"]
PATIENTS = """\
version: 1
app: {title: {en: Clinic, zh: 诊所}, default_locale: zh}
entities:
  patient:
    label: {en: Patient, zh: 患者}
    title: name
    subject: {erase: delete}
    fields:
      name: {type: string, required: true, label: {en: Name, zh: 姓名}}
      mobile: {type: phone, sensitive: true, label: {en: Mobile, zh: 手机}}
      diagnosis: {type: text, sensitive: true, label: {en: Diagnosis, zh: 诊断}}
      card_no: {type: string, encrypted: true, label: {en: Card, zh: 卡号}}
      visits: {type: integer, label: {en: Visits, zh: 就诊次数}}
    search: [name]
  visit:
    label: {en: Visit, zh: 就诊}
    title: note
    fields:
      patient: {type: relation, to: patient, on_delete: cascade, required: true,
                label: {en: Patient, zh: 患者}}
      note: {type: text, sensitive: true, label: {en: Note, zh: 备注}}
"""


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_only_subject_entities_get_sealed_columns(path: Path) -> None:
    spec, problems = check_file(path)
    assert spec is not None, [p.format() for p in problems]
    models = build_models(spec)
    for entity in spec.entities:
        table = models.table(entity.name)
        sealed = {f.name for f in entity.sealed_fields}
        for f in entity.fields:
            if f.is_many or f.is_foreign_key:
                continue
            column_type = table.c[f.name].type
            if f.name in sealed:
                assert isinstance(column_type, SubjectText), (entity.name, f.name)
                assert entity.subject is not None and (f.encrypted or f.sensitive)
                # looked up (search, filters, unique, import key): by a keyed blind index
                blind = f"{f.name}__bi"
                assert (blind in table.c) == (f.name in entity.lookup_fields), (entity.name, f.name)
                assert not table.c[f.name].unique
                if f.unique:
                    assert table.c[blind].unique
            else:
                assert not isinstance(column_type, SubjectText), (entity.name, f.name)
                assert isinstance(column_type, EncryptedText) == f.encrypted
        if entity.subject is None:
            assert entity.sealed_fields == () and entity.log_sealed_fields == ()


def test_small_schema_seals_on_write_and_erase_deletes_with_children(app_factory, tmp_path):
    schema = tmp_path / "clinic.yaml"
    schema.write_text(PATIENTS, encoding="utf-8")
    app = app_factory(schema, "sqlite")
    from app.records import records

    with app.app_context():
        patients = records("patient", None)
        obj = patients.create({"name": "李四", "mobile": "13811112222",
                               "diagnosis": "secret-diagnosis-77", "card_no": "CARD-99"})
        records("visit", None).create({"patient": obj.id, "note": "visit-note-55"})
        pk = obj.id
        raw = sa.table("patient", sa.column("id"), sa.column("mobile"), sa.column("diagnosis"),
                       sa.column("card_no"))
        with state().db.engine.connect() as conn:
            row = conn.execute(sa.select(raw).where(raw.c.id == pk)).one()
        assert all(str(v).startswith("sk1:") for v in row[1:])  # mobile is no lookup here
        state().db.session.remove()
        again = records("patient", None).get(pk)
        assert (again.mobile, again.diagnosis, again.card_no) == (
            "13811112222", "secret-diagnosis-77", "CARD-99")
        log = state().models.system["audit_log"]
        with state().db.engine.connect() as conn:
            created = conn.execute(sa.select(log.c.changes).where(
                log.c.entity == "patient", log.c.action == "create")).scalar()
        diff = json.loads(created)
        assert diff["diagnosis"]["sealed"] and "secret" not in created
        assert "visits" not in diff and diff["name"] == {"before": None, "after": "李四"}

        done = records("patient", None).erase(records("patient", None).get(pk))
        assert done["mode"] == "delete" and done["keys_destroyed"] >= 1
        visit_table = state().models.table("visit")
        with state().db.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(visit_table)).scalar() == 0
            assert conn.execute(sa.select(raw).where(raw.c.id == pk)).first() is None
            deleted = conn.execute(sa.select(log.c.changes, log.c.record_title).where(
                log.c.entity == "patient", log.c.action == "delete")).one()
        assert deleted.record_title is None and "李四" not in (deleted.changes or "")
