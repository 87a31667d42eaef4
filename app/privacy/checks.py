"""Checks of `subject:` and `retention:` (SD-E250…SD-E256, SD-W025…SD-W027).

Kept beside `app.schema.checks` (which calls `with_privacy` with its `Checker`
once the entities and their fields are known).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from app.i18n import N_

if TYPE_CHECKING:  # app.schema imports this module while it loads: import it lazily
    from app.schema.checks import Checker
    from app.schema.spec import EntitySpec, RetentionSpec, SubjectSpec

CODES: dict[str, str] = {
    "SD-E250": "subject is not true or a mapping with 'erase'",
    "SD-E251": "subject erase is not 'anonymise' or 'delete'",
    "SD-E252": "retention is not a mapping with 'after', 'from' and 'action'",
    "SD-E253": "retention after is not a duration (3y, 18m, 90d, 2w)",
    "SD-E254": "retention from is not a date or datetime field",
    "SD-E255": "retention action is not 'anonymise' or 'delete'",
    "SD-E256": "retention when uses $user or $me (no one is signed in when it runs)",
    "SD-W025": "sealed field of a data subject used to order lists or group charts",
    "SD-W026": "data subject has no sensitive or encrypted text field to seal",
    "SD-W027": "a restricting relation to a data subject blocks erase: delete",
}
SUBJECT_KEYS = ("erase",)
RETENTION_KEYS = ("after", "from", "when", "action")
MODES = ("anonymise", "delete")
DURATION = re.compile(r"^(\d+)\s*([ymwd])$")


def parse_duration(text: Any) -> tuple[int, int] | None:
    """(months, days) of `3y`, `18m`, `2w`, `90d`, or None."""
    match = DURATION.match(str(text).strip()) if isinstance(text, str | int) else None
    if match is None or int(match.group(1)) <= 0:
        return None
    n, unit = int(match.group(1)), match.group(2)
    return {"y": (12 * n, 0), "m": (n, 0), "w": (0, 7 * n), "d": (0, n)}[unit]


def with_privacy(checker: Checker, entities: list[EntitySpec], entities_node: Any,
                 me_entity: str | None) -> list[EntitySpec]:
    """The entities with their checked `subject:` and `retention:`."""
    by_name = {e.name: e for e in entities}
    result = []
    for entity in entities:
        node = entities_node[entity.name]
        subject = check_subject(checker, entity, node)
        retention = None
        if node.get("retention") is not None:
            retention = check_retention(checker, entity, node, by_name, me_entity)
        entity = dataclasses.replace(entity, subject=subject, retention=retention)
        by_name[entity.name] = entity
        result.append(entity)
    for entity in result:
        if entity.subject is not None:
            warn_subject(checker, entity, entities_node, result)
    return result


def check_subject(checker: Checker, entity: EntitySpec, node: Any) -> SubjectSpec | None:
    from app.schema.spec import SubjectSpec

    value = node.get("subject")
    path = f"entities.{entity.name}.subject"
    if value is None or value is False:
        return None
    if value is True:
        return SubjectSpec()
    if not isinstance(value, dict):
        checker.report("SD-E250", path, N_("subject must be true or a mapping such as "
                                           "{erase: anonymise}"), node, "subject")
        return None
    checker.unknown_keys(value, SUBJECT_KEYS, path)
    erase = value.get("erase", "anonymise")
    if erase not in MODES:
        checker.report("SD-E251", f"{path}.erase",
                       N_("erase must be 'anonymise' or 'delete', not '%(value)s'"),
                       value, "erase", value=erase, **checker.did_you_mean(erase, MODES))
        return None
    return SubjectSpec(erase=erase)


def check_retention(checker: Checker, entity: EntitySpec, node: Any,
                    by_name: dict[str, EntitySpec], me_entity: str | None
                    ) -> RetentionSpec | None:
    from app.schema.conditions import SYSTEM_FIELDS, ConditionChecker
    from app.schema.spec import DATE_TYPES, RetentionSpec

    value = node["retention"]
    path = f"entities.{entity.name}.retention"
    if not isinstance(value, dict) or any(k not in value for k in ("after", "from", "action")):
        checker.report("SD-E252", path, N_("retention needs 'after', 'from' and 'action', e.g. "
                                           "{after: 3y, from: updated_at, action: anonymise}"),
                       node, "retention")
        return None
    checker.unknown_keys(value, RETENTION_KEYS, path)
    ok = True
    duration = parse_duration(value["after"])
    if duration is None:
        checker.report("SD-E253", f"{path}.after",
                       N_("'%(value)s' is not a duration: write 3y, 18m, 2w or 90d"),
                       value, "after", value=value["after"])
        ok = False
    date_name = value["from"]
    f = entity.field(date_name) if isinstance(date_name, str) and entity.has_field(
        date_name) else SYSTEM_FIELDS.get(str(date_name))
    if f is None or f.type not in DATE_TYPES:
        names = [x.name for x in entity.fields if x.type in DATE_TYPES] + [
            "created_at", "updated_at"]
        checker.report("SD-E254", f"{path}.from",
                       N_("'%(value)s' is not a date or datetime field of %(entity)s"),
                       value, "from", value=date_name, entity=entity.name,
                       **checker.did_you_mean(date_name, names))
        ok = False
    action = value["action"]
    if action not in MODES:
        checker.report("SD-E255", f"{path}.action",
                       N_("action must be 'anonymise' or 'delete', not '%(value)s'"),
                       value, "action", value=action, **checker.did_you_mean(action, MODES))
        ok = False
    when = None
    if value.get("when") is not None:
        if _uses_variables(value["when"]):
            checker.report("SD-E256", f"{path}.when",
                           N_("retention runs with no one signed in: its condition cannot "
                              "use $user or $me"), value, "when")
            return None
        when = ConditionChecker(checker, by_name, me_entity).parse(
            value["when"], entity, f"{path}.when", value, "when")
        ok = ok and when is not None
    if not ok or duration is None:
        return None
    return RetentionSpec(after=str(value["after"]), months=duration[0], days=duration[1],
                         date_field=str(date_name), when=when, action=action)


def _uses_variables(node: Any) -> bool:
    if isinstance(node, str):
        return node.startswith("$user") or node.startswith("$me")
    if isinstance(node, dict):
        return any(_uses_variables(v) for v in node.values())
    if isinstance(node, list):
        return any(_uses_variables(v) for v in node)
    return False


def warn_subject(checker: Checker, entity: EntitySpec, entities_node: Any,
                 entities: list[EntitySpec]) -> None:
    """Warn where erasure reaches less than the author may think."""

    node = entities_node[entity.name]
    fields_node = node.get("fields") or {}
    sealed = {f.name for f in entity.sealed_fields}
    unsortable = {c.lstrip("-") for c in entity.order} | {c.group_by for c in entity.charts
                                                          if c.group_by}
    for f in entity.sealed_fields:
        if f.name in unsortable:
            checker.report(
                "SD-W025", f"entities.{entity.name}.fields.{f.name}",
                N_("'%(name)s' is sealed (a data subject's sensitive value): lists cannot be "
                   "ordered and charts cannot be grouped by it; search, filters, unique and "
                   "import_key match whole values through its blind index"),
                fields_node, f.name, name=f.name)
    if not sealed:
        checker.report("SD-W026", f"entities.{entity.name}.subject",
                       N_("%(entity)s is a data subject but has no sensitive or encrypted text "
                          "field to seal; erasure only deletes or anonymises the record"),
                       node, "subject", entity=entity.name)
    if entity.subject is not None and entity.subject.erase == "delete":
        for other in entities:
            for f in other.fields:
                if f.is_relation and f.to == entity.name and f.on_delete == "restrict":
                    checker.report(
                        "SD-W027", f"entities.{other.name}.fields.{f.name}.on_delete",
                        N_("%(other)s.%(name)s restricts deleting %(entity)s: erasing a "
                           "%(entity)s that has %(other)s records will be refused"),
                        entities_node[other.name].get("fields") or {}, f.name,
                        other=other.name, name=f.name, entity=entity.name)
