# ruff: noqa: E501
"""`subject:` and `retention:` checks (SD-E250…SD-E256, SD-W025…SD-W027), one case per code.

The cases join `tests/unit/test_schema_checks.py`'s CASES (which asserts every
code has one and that it is reported at its YAML path).
"""

from __future__ import annotations

from app.privacy.checks import parse_duration
from app.schema import check_text

IMPORT_KEY = "    import_key: phone\n"
R = "entities.customer.retention"
NOTE_LINK = """\
    import_key: phone
    charts:
      - {name: by_kind, type: pie, group_by: kind, label: {en: By type, zh: 按类型}}
  note:
    label: {en: Note, zh: 备注}
    fields:
      customer: {type: relation, to: customer, on_delete: cascade, label: {en: C, zh: 客}}
"""


def retention(text: str) -> tuple[str, str]:
    return IMPORT_KEY, IMPORT_KEY + f"    retention: {text}\n"


PRIVACY_CASES: list[tuple[str, str, str, str]] = [
    ("SD-E250", IMPORT_KEY, IMPORT_KEY + "    subject: yes please\n", "entities.customer.subject"),
    ("SD-E251", IMPORT_KEY, IMPORT_KEY + "    subject: {erase: shred}\n", "entities.customer.subject.erase"),
    ("SD-E252", *retention("3y"), R),
    ("SD-E253", *retention("{after: soon, from: since, action: delete}"), f"{R}.after"),
    ("SD-E254", *retention("{after: 3y, from: name, action: delete}"), f"{R}.from"),
    ("SD-E255", *retention("{after: 3y, from: since, action: purge}"), f"{R}.action"),
    ("SD-E256", *retention("{after: 3y, from: since, action: delete, when: {owner: $me}}"), f"{R}.when"),
    ("SD-W025", "    order: [-created_at]\n    children: [note]\n    import_key: phone\n",
     "    order: [phone]\n    children: [note]\n    import_key: phone\n    subject: true\n",
     "entities.customer.fields.phone"),
    ("SD-W026", "      subject: {type: string, label: {en: Subject, zh: 主题}}\n",
     "      subject: {type: string, label: {en: Subject, zh: 主题}}\n    subject: true\n", "entities.note.subject"),
    ("SD-W027", NOTE_LINK, NOTE_LINK.replace("    charts:", "    subject: {erase: delete}\n    charts:").replace(
        "on_delete: cascade", "on_delete: restrict"), "entities.note.fields.customer.on_delete"),
]


def test_durations() -> None:
    assert parse_duration("3y") == (36, 0) and parse_duration("18m") == (18, 0)
    assert parse_duration("2w") == (0, 14) and parse_duration("90d") == (0, 90)
    assert parse_duration("0d") is None and parse_duration("soon") is None


def test_subject_seals_encrypted_and_unlooked_sensitive_fields() -> None:
    from tests.unit.test_schema_checks import BASE

    text = BASE.replace(IMPORT_KEY, IMPORT_KEY + "    subject: true\n    retention: {after: 18m, from: since, when: {kind: person}, action: anonymise}\n")
    spec, problems = check_text(text, "t.yaml")
    assert spec is not None, [p.format() for p in problems]
    customer = spec.entity("customer")
    assert [f.name for f in customer.sealed_fields] == ["phone", "id_no"]
    assert [f.name for f in customer.blind_fields] == ["phone"]  # searched, unique, import key
    assert {f.name for f in customer.log_sealed_fields} == {"phone", "id_no"}
    assert customer.retention is not None and customer.retention.months == 18
    assert spec.entity("note").sealed_fields == ()  # not a subject: unchanged
