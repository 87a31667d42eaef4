# ruff: noqa: E501
"""Rollups and classify (SD-E230..E239, SD-W020..W022): checked, read into the spec.

`RULE_CASES` joins the table of `tests/unit/test_schema_checks.py` (one case per
code, applied to its BASE schema); the tests below check what the spec holds.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.schema import check_text

# The last field of BASE's customer, and the last of its note.
HELPERS = "      helpers: {type: relation, to: employee, many: true, label: {en: Helpers, zh: 协助}}\n"
SUBJECT = "      subject: {type: string, label: {en: Subject, zh: 主题}}\n"
NOTES = "      notes: {type: rollup, of: note.id, agg: count, label: {en: Notes, zh: 备注数}}\n"
GRADE = "      grade: {type: enum, choices: [a, b], label: {en: Grade, zh: 等级}, classify: [{when: {notes: {gte: 2}}, value: a}, {value: b}]}\n"
C = "entities.customer.fields"


def fields(*lines: str) -> tuple[str, str]:
    """A case that adds field lines to the customer."""
    return HELPERS, HELPERS + "".join(lines)


def note_fields(*lines: str) -> tuple[str, str]:
    return SUBJECT, SUBJECT + "".join(lines)


RULE_CASES = [
    ("SD-E230", *fields(NOTES.replace("note.id", "nte.id")), f"{C}.notes.of"),
    ("SD-E231", *fields(NOTES.replace("note.id", "note.bdy")), f"{C}.notes.of"),
    ("SD-E232", *fields(NOTES.replace("agg: count", "agg: count, via: body")), f"{C}.notes.via"),
    ("SD-E233", *note_fields(
        "      parent: {type: relation, to: note, label: {en: P, zh: 父}}\n",
        "      twin: {type: relation, to: note, label: {en: T, zh: 孪}}\n",
        "      kids: {type: rollup, of: note.id, agg: count, label: {en: K, zh: 子}}\n"),
     "entities.note.fields.kids.of"),
    ("SD-E234", *fields(NOTES.replace("agg: count", "agg: median")), f"{C}.notes.agg"),
    ("SD-E235", *fields(NOTES.replace("note.id, agg: count", "note.body, agg: sum")), f"{C}.notes.agg"),
    ("SD-E236", *fields("      lvl: {type: string, classify: [{value: a}], label: {en: L, zh: 级}}\n"), f"{C}.lvl.classify"),
    ("SD-E237", *fields(NOTES, GRADE.replace("{value: b}", "{value: z}")), f"{C}.grade.classify[1].value"),
    ("SD-E238", *fields(NOTES, GRADE.replace(", {value: b}", "")), f"{C}.grade.classify"),
    ("SD-E239", *fields(NOTES, GRADE.replace("{notes: {gte: 2}}", "{grade: a}")), f"{C}.grade"),
    ("SD-W020", *note_fields(
        "      parent: {type: relation, to: note, label: {en: P, zh: 父}}\n",
        "      amount: {type: decimal, sensitive: true, label: {en: A, zh: 额}}\n",
        "      total: {type: rollup, of: note.amount, agg: sum, label: {en: T, zh: 计}}\n"),
     "entities.note.fields.total"),
    ("SD-W021", *fields(NOTES, GRADE.replace("choices: [a, b]", "choices: [a, b], default: b")), f"{C}.grade.default"),
    ("SD-W022", *fields(NOTES, GRADE.replace("choices: [a, b]", "choices: [a, b, c]")), f"{C}.grade.classify"),
]

BASE_FOR_SPEC = """\
version: 1
app: {title: {en: Shop, zh: 商店}}
entities:
  member:
    label: {en: Member, zh: 会员}
    fields:
      name: {type: string, required: true, label: {en: Name, zh: 姓名}}
      spent: {type: rollup, of: purchase.amount, agg: sum, where: {paid: true}, label: {en: Spent, zh: 消费}}
      buys: {type: rollup, of: purchase, agg: count, label: {en: Purchases, zh: 购买次数}}
      points: {type: rollup, of: purchase.amount, agg: sum, multiply: 0.01, scale: 0, label: {en: Points, zh: 积分}}
      last: {type: rollup, of: purchase.day, agg: max, label: {en: Last, zh: 最近}}
      tier:
        type: enum
        label: {en: Tier, zh: 等级}
        choices: [gold, plain]
        classify: [{when: {spent: {gte: 1000}}, value: gold}, {value: plain}]
  purchase:
    label: {en: Purchase, zh: 购买}
    fields:
      member: {type: relation, to: member, required: true, on_delete: cascade, label: {en: Member, zh: 会员}}
      amount: {type: decimal, precision: 10, scale: 2, currency: CNY, label: {en: Amount, zh: 金额}}
      paid: {type: boolean, label: {en: Paid, zh: 已付}}
      day: {type: date, label: {en: Day, zh: 日期}}
"""


def test_rollups_and_classify_are_read_into_the_spec() -> None:
    spec, problems = check_text(BASE_FOR_SPEC, "shop.yaml")
    assert spec is not None, [p.format() for p in problems]
    member = spec.entity("member")
    spent = member.field("spent")
    assert (spent.type, spent.scale, spent.readonly, spent.currency) == ("decimal", 2, True, "CNY")
    assert spent.rollup is not None and spent.rollup.via == "member" and spent.rollup.agg == "sum"
    assert spent.rollup.where is not None and spent.rollup.where.path == ("paid",)
    assert member.field("buys").type == "integer" and member.field("buys").rollup.field == "id"
    points = member.field("points")
    assert points.type == "integer" and points.rollup.multiply == Decimal("0.01")
    assert member.field("last").type == "date"
    tier = member.field("tier")
    assert tier.readonly and tier.computed and [r.value for r in tier.classify] == ["gold", "plain"]
    assert tier.classify[-1].when is None


def test_a_rule_cannot_use_user_variables() -> None:
    text = BASE_FOR_SPEC.replace("where: {paid: true}", "where: {created_by: $user}")
    spec, problems = check_text(text, "shop.yaml")
    assert spec is None
    assert [p.path for p in problems if p.code == "SD-E239"] == ["entities.member.fields.spent.where"]


def test_rollups_reading_each_other_in_a_cycle_are_refused() -> None:
    text = BASE_FOR_SPEC.replace(
        "      day: {type: date,",
        "      echo: {type: rollup, of: member.spent, agg: sum, via: member, label: {en: E, zh: E}}\n"
        "      day: {type: date,")
    spec, problems = check_text(text, "shop.yaml")
    # purchase.echo needs a relation from member to purchase: there is none
    assert any(p.code == "SD-E232" for p in problems)


@pytest.mark.parametrize("bad, code", [
    ("agg: sum, multiply: 0.01", "agg: sum, multiply: lots"),
    ("agg: sum, multiply: 0.01, scale: 0", "agg: sum, multiply: 0.01, scale: -1"),
])
def test_rollup_option_values_are_checked(bad: str, code: str) -> None:
    spec, problems = check_text(BASE_FOR_SPEC.replace(bad, code), "shop.yaml")
    assert spec is None and any(p.code == "SD-E105" for p in problems)
