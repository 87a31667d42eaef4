"""A retention rule (保存期限) in words, for the retention page.

The page is read by the people who confirm a rule, not by the ones who wrote
the YAML: "3 years after 更新时间, when 状态 is 流失: anonymise" says what
will happen where `after: 3y, from: updated_at, when: …` makes them decode it.
"""

from __future__ import annotations

from typing import Any

from app.i18n import N_, gettext
from app.schema.conditions import field_of
from app.schema.spec import Condition, EntitySpec

UNITS = {"y": (N_("%(n)d year"), N_("%(n)d years")), "m": (N_("%(n)d month"), N_("%(n)d months")),
         "w": (N_("%(n)d week"), N_("%(n)d weeks")), "d": (N_("%(n)d day"), N_("%(n)d days"))}
OPS = {"eq": N_("%(field)s is %(value)s"), "ne": N_("%(field)s is not %(value)s"),
       "gt": N_("%(field)s is more than %(value)s"),
       "gte": N_("%(field)s is at least %(value)s"),
       "lt": N_("%(field)s is less than %(value)s"),
       "lte": N_("%(field)s is at most %(value)s"),
       "in": N_("%(field)s is one of %(value)s"),
       "contains": N_("%(field)s contains %(value)s"),
       "under": N_("%(field)s is under %(value)s")}


def duration_words(after: str) -> str:
    """`3y` as "3 years" / "3 年" (as written when it is not a duration)."""
    text = str(after).strip()
    unit = text[-1:]
    if unit in UNITS and text[:-1].strip().isdigit():
        n = int(text[:-1])
        return gettext(UNITS[unit][n != 1], n=n)
    return text


def _field_label(entity: EntitySpec, path: tuple[str, ...], lang: str) -> str:
    f = field_of(entity, path[0]) if len(path) == 1 else None
    return f.label.get(lang) if f is not None else ".".join(path)


def _value_words(entity: EntitySpec, path: tuple[str, ...], value: Any, lang: str) -> str:
    f = field_of(entity, path[0]) if len(path) == 1 else None
    values = value if isinstance(value, list | tuple) else [value]
    if f is not None and f.type == "enum":
        values = [f.choice_label(v, lang) for v in values]
    return ("、" if lang == "zh" else ", ").join(str(v) for v in values)


def condition_words(entity: EntitySpec, node: Condition, lang: str) -> str:
    """A `when:` condition as a sentence: field labels, enum labels, 且/或."""
    if node.kind in ("and", "or"):
        joiner = gettext(N_(" and ")) if node.kind == "and" else gettext(N_(" or "))
        return joiner.join(condition_words(entity, item, lang) for item in node.items)
    return gettext(OPS.get(node.op, OPS["eq"]), field=_field_label(entity, node.path, lang),
                   value=_value_words(entity, node.path, node.value, lang))


def rule_words(entity: EntitySpec, lang: str) -> str:
    """The entity's retention rule in one sentence, in the reader's language."""
    rule = entity.retention
    if rule is None:
        return ""
    date = field_of(entity, rule.date_field)
    date_label = date.label.get(lang) if date is not None else rule.date_field
    action = gettext(N_("delete")) if rule.action == "delete" else gettext(N_("anonymise"))
    if rule.when is not None:
        return gettext(N_("%(duration)s after %(date)s, when %(condition)s: %(action)s"),
                       duration=duration_words(rule.after), date=date_label,
                       condition=condition_words(entity, rule.when, lang), action=action)
    return gettext(N_("%(duration)s after %(date)s: %(action)s"),
                   duration=duration_words(rule.after), date=date_label, action=action)
