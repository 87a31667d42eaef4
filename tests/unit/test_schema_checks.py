# ruff: noqa: E501
"""`schemadesk schema check`: every code, with its YAML path and position."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.schema import check_file, check_text
from app.schema.checks import CODES
from tests.unit.test_approval_checks import APPROVAL_CASES
from tests.unit.test_automation_checks import AUTOMATION_CASES
from tests.unit.test_privacy_checks import PRIVACY_CASES
from tests.unit.test_rollup_checks import RULE_CASES
from tests.unit.test_views_checks import VIEW_CASES

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
version: 1
app:
  title: {en: Test, zh: 测试}
  default_locale: zh
entities:
  employee:
    label: {en: Employee, zh: 员工}
    fields:
      name: {type: string, required: true, label: {en: Name, zh: 姓名}}
      account: {type: user, label: {en: Account, zh: 账号}}
  customer:
    label: {en: Customer, zh: 客户}
    menu: {en: CRM, zh: 客户关系}
    title: name
    fields:
      name: {type: string, max_length: 100, required: true, label: {en: Name, zh: 名称}}
      kind:
        type: enum
        default: company
        label: {en: Type, zh: 类型}
        choices: {person: {en: Person, zh: 个人}, company: {en: Company, zh: 企业}}
      phone: {type: phone, unique: true, sensitive: true, label: {en: Phone, zh: 电话}}
      credit: {type: decimal, precision: 12, scale: 2, min: 0, label: {en: Credit, zh: 额度}}
      owner: {type: relation, to: employee, on_delete: set_null, label: {en: Owner, zh: 负责人}}
      id_no: {type: string, encrypted: true, label: {en: ID, zh: 证件号}}
      since: {type: date, label: {en: Since, zh: 起始}}
      helpers: {type: relation, to: employee, many: true, label: {en: Helpers, zh: 协助}}
    list: [name, kind, phone, owner]
    search: [name, phone]
    filters: [kind, owner, created_at]
    order: [-created_at]
    children: [note]
    import_key: phone
    charts:
      - {name: by_kind, type: pie, group_by: kind, label: {en: By type, zh: 按类型}}
  note:
    label: {en: Note, zh: 备注}
    fields:
      customer: {type: relation, to: customer, on_delete: cascade, label: {en: C, zh: 客}}
      body: {type: text, label: {en: Body, zh: 内容}}
      subject: {type: string, label: {en: Subject, zh: 主题}}
roles:
  operator:
    label: {en: Operator, zh: 操作员}
    grants:
      customer: [read, create]
    rows:
      customer: {owner: $user}
dashboards:
  home:
    - {chart: customer.by_kind}
    - {kpi: customer.count, label: {en: Customers, zh: 客户数}}
"""


def codes_of(text: str) -> list[tuple[str, str]]:
    _spec, problems = check_text(text, "t.yaml")
    return [(p.code, p.path) for p in problems]


def test_base_schema_is_clean() -> None:
    spec, problems = check_text(BASE, "t.yaml")
    assert problems == []
    assert spec is not None and [e.name for e in spec.entities] == ["employee", "customer", "note"]


def test_shipped_schemas_are_clean() -> None:
    for path in (ROOT / "schema" / "crm.yaml", ROOT / "schema" / "examples" / "library.yaml"):
        spec, problems = check_file(path)
        assert spec is not None, [p.format() for p in problems]
        assert [p for p in problems if p.is_error] == []


IMPORT_KEY = "    import_key: phone\n"
WORKFLOW = """\
    workflow:
      field: kind
      initial: person
      transitions:
        - {name: promote, from: person, to: company, roles: [operator], requires: [name], comment: optional, label: {en: Promote, zh: 升级}}
"""

# (code, replace old -> new in BASE, expected YAML path)
CASES: list[tuple[str, str, str, str]] = [
    ("SD-E001", "version: 1\n", "version: [1\n", ""),
    ("SD-E002", "      body: {type: text", "      body: {type: text}\n      body: {type: text", ""),
    ("SD-E003", "    list: [name, kind, phone, owner]", "    list: name", "entities.customer.list"),
    ("SD-E004", "version: 1", "version: 2", "version"),
    ("SD-E101", "    title: name", "    title: name\n    lsit: [name]", "entities.customer.lsit"),
    ("SD-E102", "version: 1\n", "", "version"),
    ("SD-E103", "  note:", "  Note-s:", "entities.Note-s"),
    (
        "SD-E104",
        "      body: {type: text",
        "      created_at: {type: text",
        "entities.note.fields.created_at",
    ),
    (
        "SD-E105",
        "unique: true, sensitive: true",
        "unique: yes please, sensitive: true",
        "entities.customer.fields.phone.unique",
    ),
    ("SD-E110", "body: {type: text", "body: {type: txt", "entities.note.fields.body.type"),
    (
        "SD-E111",
        "to: employee, on_delete: set_null",
        "to: employe, on_delete: set_null",
        "entities.customer.fields.owner.to",
    ),
    (
        "SD-E112",
        "{type: relation, to: employee, on_delete: set_null,",
        "{type: relation, on_delete: set_null,",
        "entities.customer.fields.owner.to",
    ),
    (
        "SD-E113",
        "on_delete: set_null",
        "on_delete: nullify",
        "entities.customer.fields.owner.on_delete",
    ),
    (
        "SD-E114",
        "{type: text, label: {en: Body",
        "{type: text, choices: [a], label: {en: Body",
        "entities.note.fields.body.choices",
    ),
    (
        "SD-E115",
        "        choices: {person: {en: Person, zh: 个人}, company: {en: Company, zh: 企业}}\n",
        "",
        "entities.customer.fields.kind.choices",
    ),
    ("SD-E116", "default: company", "default: firm", "entities.customer.fields.kind.default"),
    (
        "SD-E117",
        "precision: 12, scale: 2",
        "precision: 4, scale: 6",
        "entities.customer.fields.credit.scale",
    ),
    (
        "SD-E118",
        "scale: 2, min: 0",
        "scale: 2, min: 10, max: 5",
        "entities.customer.fields.credit.min",
    ),
    (
        "SD-E119",
        "max_length: 100,",
        "max_length: 100, pattern: '[a-',",
        "entities.customer.fields.name.pattern",
    ),
    (
        "SD-E120",
        "on_delete: set_null, label: {en: Owner",
        "on_delete: set_null, required: true, label: {en: Owner",
        "entities.customer.fields.owner.on_delete",
    ),
    (
        "SD-E121",
        "min: 0, label: {en: Credit",
        "min: 0, default: lots, label: {en: Credit",
        "entities.customer.fields.credit.default",
    ),
    ("SD-E122", "default_locale: zh", "default_locale: fr", "app.default_locale"),
    (
        "SD-E130",
        "list: [name, kind, phone, owner]",
        "list: [nme, kind]",
        "entities.customer.list[0]",
    ),
    ("SD-E131", "search: [name, phone]", "search: [name, credit]", "entities.customer.search[1]"),
    (
        "SD-E132",
        "filters: [kind, owner, created_at]",
        "filters: [knd]",
        "entities.customer.filters[0]",
    ),
    ("SD-E133", "order: [-created_at]", "order: [-created]", "entities.customer.order[0]"),
    ("SD-E134", "    title: name", "    title: nam", "entities.customer.title"),
    ("SD-E135", "children: [note]", "children: [employee]", "entities.customer.children[0]"),
    ("SD-E136", "import_key: phone", "import_key: name", "entities.customer.import_key"),
    (
        "SD-E137",
        "filters: [kind, owner, created_at]",
        "filters: [kind, helpers]",
        "entities.customer.filters[1]",
    ),
    ("SD-E140", "search: [name, phone]", "search: [name, id_no]", "entities.customer.search[1]"),
    (
        "SD-E141",
        "{type: string, encrypted: true,",
        "{type: string, encrypted: true, unique: true,",
        "entities.customer.fields.id_no.unique",
    ),
    (
        "SD-E150",
        "      customer: [read, create]",
        "      customr: [read, create]",
        "roles.operator.grants.customr",
    ),
    (
        "SD-E151",
        "customer: [read, create]",
        "customer: [read, craete]",
        "roles.operator.grants.customer[1]",
    ),
    (
        "SD-E152",
        "customer: {owner: $user}",
        "customer: {ownr: $user}",
        "roles.operator.rows.customer.ownr",
    ),
    (
        "SD-E153",
        "customer: {owner: $user}",
        "customer: {name: $user}",
        "roles.operator.rows.customer.name",
    ),
    (
        "SD-E154",
        "customer: {owner: $user}",
        "customer: {owner: $boss}",
        "roles.operator.rows.customer.owner",
    ),
    (
        "SD-E156",
        "customer: {owner: $user}",
        "customer: {owner: {near: $user}}",
        "roles.operator.rows.customer.owner.near",
    ),
    (
        "SD-E157",
        "customer: {owner: $user}",
        "customer: {owner: {under: $me}}",
        "roles.operator.rows.customer.owner.under",
    ),
    (
        "SD-E158",
        "customer: {owner: $user}",
        "customer: {name.owner: $user}",
        "roles.operator.rows.customer.name.owner",
    ),
    (
        "SD-E123",
        "id_no: {type: string, encrypted: true,",
        "id_no: {type: string, encrypted: true, renamed_from: id_no,",
        "entities.customer.fields.id_no.renamed_from",
    ),
    (
        "SD-E159",
        "customer: {owner: $user}",
        "customer: {id_no: X1}",
        "roles.operator.rows.customer.id_no",
    ),
    (
        "SD-E155",
        "  operator:\n    label: {en: Operator",
        "  Admin:\n    label: {en: Operator",
        "roles.Admin",
    ),
    (
        "SD-E160",
        "type: pie, group_by: kind",
        "type: donut, group_by: kind",
        "entities.customer.charts[0].type",
    ),
    (
        "SD-E161",
        "type: pie, group_by: kind",
        "type: pie, group_by: body",
        "entities.customer.charts[0].group_by",
    ),
    (
        "SD-E162",
        "type: pie, group_by: kind",
        "type: pie, group_by: kind, period: month",
        "entities.customer.charts[0].period",
    ),
    (
        "SD-E163",
        "type: pie, group_by: kind",
        "type: pie, group_by: kind, measure: {sum: name}",
        "entities.customer.charts[0].measure",
    ),
    (
        "SD-E164",
        "type: pie, group_by: kind",
        "type: line, group_by: since, period: fortnight",
        "entities.customer.charts[0].period",
    ),
    (
        "SD-E165",
        "type: pie, group_by: kind",
        "type: pie, group_by: kind, measure: {median: credit}",
        "entities.customer.charts[0].measure",
    ),
    (
        "SD-E166",
        "      - {name: by_kind, type: pie, group_by: kind, label: {en: By type, zh: 按类型}}",
        "      - {name: by_kind, type: pie, group_by: kind}\n      - {name: by_kind, type: bar, group_by: kind}",
        "entities.customer.charts[1].name",
    ),
    (
        "SD-E170",
        "{chart: customer.by_kind}",
        "{chart: customer.by_knd}",
        "dashboards.home[0].chart",
    ),
    ("SD-E171", "{kpi: customer.count,", "{kpi: customer.sum:name,", "dashboards.home[1].kpi"),
    ("SD-E180", IMPORT_KEY, IMPORT_KEY + WORKFLOW.replace("field: kind", "field: knd"), "entities.customer.workflow.field"),
    ("SD-E181", IMPORT_KEY, IMPORT_KEY + WORKFLOW.replace("to: company", "to: compnay"), "entities.customer.workflow.transitions[0].to"),
    ("SD-E182", IMPORT_KEY, IMPORT_KEY + WORKFLOW + "        - {name: promote, from: company, to: person}\n", "entities.customer.workflow.transitions[1].name"),
    ("SD-E183", IMPORT_KEY, IMPORT_KEY + WORKFLOW.replace("roles: [operator]", "roles: [operatr]"), "entities.customer.workflow.transitions[0].roles[0]"),
    ("SD-E184", IMPORT_KEY, IMPORT_KEY + WORKFLOW.replace("requires: [name]", "requires: [nme]"), "entities.customer.workflow.transitions[0].requires[0]"),
    ("SD-E185", IMPORT_KEY, IMPORT_KEY + WORKFLOW.replace("comment: optional", "comment: maybe"), "entities.customer.workflow.transitions[0].comment"),
    ("SD-E240", "    label: {en: Operator, zh: 操作员}\n", "    label: {en: Operator, zh: 操作员}\n    mfa: requird\n", "roles.operator.mfa"),
    ("SD-E241", "    label: {en: Operator, zh: 操作员}\n", "    label: {en: Operator, zh: 操作员}\n    mfa: true\n", "roles.operator.mfa"),
    ("SD-W003", IMPORT_KEY, IMPORT_KEY + WORKFLOW.replace("from: person", "from: company"), "entities.customer.workflow.transitions"),
    (
        "SD-W001",
        "label: {en: Body, zh: 内容}",
        "label: {en: Body}",
        "entities.note.fields.body.label",
    ),
    (
        "SD-W002",
        "      subject: {type: string, label: {en: Subject, zh: 主题}}\n",
        "",
        "entities.note.title",
    ),
]
CASES += VIEW_CASES  # views, time zone, currency: tests/unit/test_views_checks.py
CASES += PRIVACY_CASES  # subject, retention: tests/unit/test_privacy_checks.py
CASES += RULE_CASES  # rollups and classify: tests/unit/test_rollup_checks.py
CASES += APPROVAL_CASES  # approvals (审批): tests/unit/test_approval_checks.py
CASES += AUTOMATION_CASES  # reminders and webhooks: tests/unit/test_automation_checks.py


def test_every_code_has_a_case() -> None:
    assert {c[0] for c in CASES} == set(CODES)


@pytest.mark.parametrize("code, old, new, path", CASES, ids=[c[0] for c in CASES])
def test_problem_code(code: str, old: str, new: str, path: str) -> None:
    assert old in BASE, f"case {code} does not apply to BASE"
    text = BASE.replace(old, new, 1)
    found = codes_of(text)
    assert any(c == code and (path == "" or p == path) for c, p in found), found


def test_unknown_key_points_at_line_and_column_with_hint() -> None:
    text = BASE.replace("    title: name", "    title: name\n    lsit: [name]", 1)
    _spec, problems = check_text(text, "schema/crm.yaml")
    problem = next(p for p in problems if p.code == "SD-E101")
    assert (problem.line, problem.column) == (15, 5)
    assert "did you mean 'list'?" in problem.format()
    assert problem.format().endswith("— schema/crm.yaml:15:5")


def test_all_problems_reported_in_one_run() -> None:
    text = BASE.replace("list: [name, kind, phone, owner]", "list: [nme, kind]").replace(
        "body: {type: text", "body: {type: txt"
    )
    codes = {c for c, _ in codes_of(text)}
    assert {"SD-E130", "SD-E110"} <= codes


def test_warnings_do_not_stop_the_spec() -> None:
    spec, problems = check_text(BASE.replace("label: {en: Body, zh: 内容}", "label: {en: Body}"))
    assert spec is not None
    assert [p.code for p in problems] == ["SD-W001"]
    assert spec.entity("note").field("body").label.get("zh") == "Body"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schema.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def run_check(path: Path, lang: str = "en_US.UTF-8") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "schema", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "LANG": lang, "HOME": str(path.parent)},
        timeout=60,
    )


def test_cli_check_exits_nonzero_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("list: [name, kind, phone, owner]", "list: [nme]"))
    result = run_check(path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "SD-E130 entities.customer.list[0]: 'nme' is not a field of customer" in result.stderr
    assert f"{path}:" in result.stderr


def test_cli_check_on_broken_yaml_and_missing_file(tmp_path: Path) -> None:
    result = run_check(write(tmp_path, "version: 1\nentities: {a: [}\n"))
    assert result.returncode == 1 and "SD-E001" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_check(tmp_path / "missing.yaml")
    assert result.returncode == 1 and "SD-E001" in result.stderr


def test_cli_check_clean_schema_exits_zero() -> None:
    result = run_check(ROOT / "schema" / "crm.yaml")
    assert result.returncode == 0, result.stderr


def test_cli_messages_in_chinese(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("list: [name, kind, phone, owner]", "list: [nme]"))
    result = run_check(path, lang="zh_CN.UTF-8")
    assert "SD-E130" in result.stderr
    assert "不是" in result.stderr


def test_docs_list_every_code() -> None:
    docs = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    for code, description in CODES.items():
        assert f"| `{code}` | {description} |" in docs, code


def test_workflow_is_read_into_the_spec() -> None:
    text = BASE.replace(IMPORT_KEY, IMPORT_KEY + WORKFLOW.replace(
        "comment: optional", "comment: required, when: {credit: {gte: 100}}").replace(
        "from: person", "from: [person]"), 1)
    spec, problems = check_text(text, "t.yaml")
    assert spec is not None, [p.format() for p in problems]
    workflow = spec.entity("customer").workflow
    assert (workflow.field, workflow.initial) == ("kind", "person")
    promote = workflow.transition("promote")
    assert promote.sources == ("person",) and promote.to == "company"
    assert promote.roles == ("operator",) and promote.requires == ("name",)
    assert promote.comment == "required" and promote.when is not None
    assert [t.name for t in workflow.leaving("person")] == ["promote"]


def test_workflow_when_uses_the_condition_syntax() -> None:
    text = BASE.replace(IMPORT_KEY, IMPORT_KEY + WORKFLOW.replace(
        "comment: optional", "when: {credt: {gte: 100}}"), 1)
    found = codes_of(text)
    assert ("SD-E152", "entities.customer.workflow.transitions[0].when.credt") in found, found


def test_role_mfa_required_is_read_into_the_spec() -> None:
    text = BASE.replace("    label: {en: Operator, zh: 操作员}\n",
                        "    label: {en: Operator, zh: 操作员}\n    mfa: required\n", 1)
    spec, problems = check_text(text, "t.yaml")
    assert [p.code for p in problems if p.code.startswith("SD-E")] == []
    assert spec.role("operator").mfa == "required"
    spec, _ = check_text(BASE, "t.yaml")
    assert spec.role("operator").mfa == "optional"


def test_role_mfa_typo_has_a_suggestion_and_position() -> None:
    text = BASE.replace("    label: {en: Operator, zh: 操作员}\n",
                        "    label: {en: Operator, zh: 操作员}\n    mfa: requird\n", 1)
    _spec, problems = check_text(text, "t.yaml")
    problem = next(p for p in problems if p.code == "SD-E240")
    assert problem.line == text.splitlines().index("    mfa: requird") + 1
    assert problem.hint_params == {"suggestion": "required"}
