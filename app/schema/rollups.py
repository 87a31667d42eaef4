"""Rules that maintain data: `type: rollup` fields and `classify:` on enum fields.

A rollup (汇总字段) is an aggregate of a child entity's field over the child records
whose relation points at the record, e.g. a customer's total spent:

    total_spent: {type: rollup, of: sales_order.amount, agg: sum,
                  where: {status: {in: [paid, completed]}}}

`classify` (自动分级) gives an enum its value from conditions, first match wins,
the last rule (without `when`) being the default:

    level: {type: enum, choices: {...},
            classify: [{when: {total_spent: {gte: 100000}}, value: a}, {value: d}]}

Both are read-only everywhere and kept by `app.records.rollups` on every write.
Checking happens in two passes: `rollup_field` reads a rollup's own options
while the entity is built (its type is provisional), `with_rules` resolves
children, relations, conditions and cycles once every entity is known.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal, InvalidOperation
from typing import Any

from app.i18n import N_
from app.schema.conditions import ConditionChecker, field_of
from app.schema.spec import (
    DATE_TYPES,
    MEASURES,
    NUMERIC_TYPES,
    ClassifyRule,
    Condition,
    EntitySpec,
    FieldSpec,
    RollupSpec,
)

CODES = {
    "SD-E230": "rollup `of` is not `<entity>.<field>` of an existing entity",
    "SD-E231": "rollup `of` names a missing field of the child entity",
    "SD-E232": "rollup child has no relation back to this entity (or `via` is not one)",
    "SD-E233": "rollup child has several relations back; `via` must choose one",
    "SD-E234": "unknown rollup aggregate",
    "SD-E235": "rollup aggregate does not apply to the field's type",
    "SD-E236": "classify on a field that is not an enum, or not a list of rules",
    "SD-E237": "classify value is not one of the enum's choices",
    "SD-E238": "classify has no default rule last (a rule without `when`)",
    "SD-E239": "rules depend on each other in a cycle, or a rule reads $user/$me",
    "SD-W020": "rollup of a sensitive field is sensitive too",
    "SD-W021": "classify field has a default, which the rules replace",
    "SD-W022": "enum choice that no classify rule gives",
}
ROLLUP_KEYS = ("type", "label", "help", "of", "agg", "via", "where", "multiply", "scale",
               "currency", "sensitive", "renamed_from")
RULE_KEYS = ("when", "value")
# A rollup's provisional type until its source field is known (`with_rules`).
PENDING = "decimal"


def rollup_field(checker: Any, name: str, node: dict, path: str) -> FieldSpec | None:
    """The provisional spec of a `type: rollup` field (its own options checked)."""
    checker.unknown_keys(node, ROLLUP_KEYS, path)
    ok = True
    of = node.get("of")
    if not isinstance(of, str) or not of:
        checker.report("SD-E230", f"{path}.of",
                       N_("a rollup needs 'of: <child entity>.<field>'"), node,
                       "of" if "of" in node else None)
        ok = False
    agg = node.get("agg", "sum")
    if agg not in MEASURES:
        checker.report("SD-E234", f"{path}.agg",
                       N_("unknown aggregate '%(value)s'; use one of %(values)s"), node, "agg",
                       value=agg, values=", ".join(MEASURES),
                       **checker.did_you_mean(agg, MEASURES))
        ok = False
    multiply = node.get("multiply")
    if multiply is not None:
        try:
            if isinstance(multiply, bool):
                raise InvalidOperation
            multiply = Decimal(str(multiply))
        except (InvalidOperation, ValueError):
            checker.report("SD-E105", f"{path}.multiply", N_("'%(option)s' must be a number"),
                           node, "multiply", option="multiply")
            ok = False
    scale = node.get("scale")
    if scale is not None and (not isinstance(scale, int) or isinstance(scale, bool)
                              or not 0 <= scale <= 10):
        checker.report("SD-E105", f"{path}.scale",
                       N_("'%(option)s' must be a whole number, 0 or more"), node, "scale",
                       option="scale")
        ok = False
    renamed_from, renamed_ok = checker.renamed_from(node, path, "rollup", False)
    if not ok or not renamed_ok:
        return None
    child, _, source = of.partition(".")
    return FieldSpec(
        name=name,
        type=PENDING,
        label=checker.label(node.get("label"), f"{path}.label", node, "label", name),
        help=checker.label(node.get("help"), f"{path}.help", node, "help", "")
        if node.get("help") is not None else None,
        readonly=True,
        sensitive=node.get("sensitive", False) is True,
        scale=scale if scale is not None else 2,
        currency=str(node["currency"]) if node.get("currency") else None,
        rollup=RollupSpec(child=child, field=source or "id", agg=agg, via="",
                          multiply=multiply),
        renamed_from=renamed_from,
    )


class RuleChecker:
    """The second pass: rollups and classify resolved against every entity."""

    def __init__(self, checker: Any, entities_node: Any, by_name: dict[str, EntitySpec],
                 me_entity: str | None):
        self.checker = checker
        self.entities_node = entities_node
        self.by_name = by_name
        self.conditions = ConditionChecker(checker, by_name, me_entity)
        # rollups resolved so far (a rollup of a rollup resolves its source first)
        self.done: dict[tuple[str, str], FieldSpec | None] = {}
        self.busy: set[tuple[str, str]] = set()

    def field_node(self, entity: str, name: str) -> Any:
        return self.entities_node[entity]["fields"][name]

    # -- rollups ---------------------------------------------------------------

    def rollup(self, entity: EntitySpec, f: FieldSpec) -> FieldSpec | None:
        """The rollup `f` of `entity` with its child, relation and result type resolved."""
        key = (entity.name, f.name)
        if key not in self.done and key not in self.busy:
            self.busy.add(key)
            self.done[key] = self._rollup(entity, f)
            self.busy.discard(key)
        return self.done.get(key, f)

    def _rollup(self, entity: EntitySpec, f: FieldSpec) -> FieldSpec | None:
        node = self.field_node(entity.name, f.name)
        path = f"entities.{entity.name}.fields.{f.name}"
        spec = f.rollup
        assert spec is not None
        child = self.by_name.get(spec.child)
        if child is None:
            self.checker.report("SD-E230", f"{path}.of", N_("'%(name)s' is not an entity"),
                                node, "of", name=spec.child,
                                **self.checker.did_you_mean(spec.child, self.by_name))
            return None
        source = field_of(child, spec.field)
        if source is not None and source.rollup is not None:  # a rollup of a rollup
            source = self.rollup(child, source) or source
        if source is None or source.is_many or source.encrypted or source.type == "user":
            self.checker.report(
                "SD-E231", f"{path}.of",
                N_("'%(name)s' is not a field of %(entity)s that can be aggregated"), node, "of",
                name=spec.field, entity=child.name,
                **self.checker.did_you_mean(spec.field, [x.name for x in child.fields]))
            return None
        via = self.via(entity, child, node, path)
        if via is None or not self.fits(spec.agg, source, node, path):
            return None
        where = None
        if node.get("where") is not None:
            where = self.condition(node["where"], child, f"{path}.where", node, "where")
            if where is None:
                return None
        ftype, scale, precision = result_type(spec, source, node.get("scale"))
        sensitive = f.sensitive or source.sensitive
        if source.sensitive and not f.sensitive:
            self.checker.report(
                "SD-W020", path,
                N_("%(source)s is sensitive, so this rollup is sensitive too (masked for "
                   "readers who may not see it)"), node, source=f"{child.name}.{source.name}")
        currency = f.currency or (source.currency if spec.agg != "count" else None)
        return dataclasses.replace(
            f, type=ftype, scale=scale, precision=precision, sensitive=sensitive,
            currency=currency if ftype == "decimal" else None,
            rollup=dataclasses.replace(spec, via=via.name, where=where))

    def via(self, entity: EntitySpec, child: EntitySpec, node: Any, path: str
            ) -> FieldSpec | None:
        """The child's relation back to `entity` (`via` names it among several)."""
        back = [x for x in child.fields
                if x.is_relation and not x.is_many and x.to == entity.name]
        wanted = node.get("via")
        if wanted is not None:
            hit = next((x for x in back if x.name == wanted), None)
            if hit is None:
                self.checker.report(
                    "SD-E232", f"{path}.via",
                    N_("'%(name)s' is not a relation of %(child)s to %(entity)s"), node, "via",
                    name=wanted, child=child.name, entity=entity.name,
                    **self.checker.did_you_mean(wanted, [x.name for x in back]))
            return hit
        if not back:
            self.checker.report(
                "SD-E232", f"{path}.of",
                N_("%(child)s has no relation to %(entity)s, so it cannot be rolled up here"),
                node, "of", child=child.name, entity=entity.name)
            return None
        if len(back) > 1:
            self.checker.report(
                "SD-E233", f"{path}.of",
                N_("%(child)s has several relations to %(entity)s (%(names)s); choose one "
                   "with 'via'"), node, "of", child=child.name, entity=entity.name,
                names=", ".join(x.name for x in back))
            return None
        return back[0]

    def fits(self, agg: str, source: FieldSpec, node: Any, path: str) -> bool:
        """Whether `agg` applies to the source field's type (count: any field)."""
        allowed = {"count": None, "sum": NUMERIC_TYPES, "avg": NUMERIC_TYPES,
                   "min": NUMERIC_TYPES + DATE_TYPES, "max": NUMERIC_TYPES + DATE_TYPES}[agg]
        if allowed is None or source.type in allowed:
            return True
        self.checker.report(
            "SD-E235", f"{path}.agg",
            N_("'%(agg)s' needs a number field (min and max: a number or a date); "
               "'%(name)s' is a %(type)s field"), node, "agg",
            agg=agg, name=source.name, type=source.type)
        return False

    def condition(self, node: Any, entity: EntitySpec, path: str, parent: Any, key: Any
                  ) -> Condition | None:
        """A rule's condition: the shared syntax, without $user/$me (no one is signed in)."""
        cond = self.conditions.parse(node, entity, path, parent, key)
        if cond is None:
            return None
        if any(isinstance(v, str) and v.startswith("$") for v in values_of(cond)):
            self.checker.report(
                "SD-E239", path,
                N_("a rule runs for every writer, so its condition cannot use $user or $me"),
                parent, key)
            return None
        return cond

    # -- classify --------------------------------------------------------------

    def classify(self, entity: EntitySpec, f: FieldSpec) -> FieldSpec | None:
        """The enum `f` with its checked `classify` rules (read-only from now on)."""
        node = self.field_node(entity.name, f.name)
        path = f"entities.{entity.name}.fields.{f.name}.classify"
        raw = node["classify"]
        if f.type != "enum" or not isinstance(raw, list) or not raw:
            self.checker.report(
                "SD-E236", path,
                N_("classify needs an enum field and a list of rules "
                   "({when: <condition>, value: <choice>}, ..., {value: <default>})"),
                node, "classify")
            return None
        rules: list[ClassifyRule] = []
        ok = True
        keys = [c.key for c in f.choices]
        for i, item in enumerate(raw):
            rpath = f"{path}[{i}]"
            if not self.checker.expect_map(item, rpath, raw, i):
                ok = False
                continue
            self.checker.unknown_keys(item, RULE_KEYS, rpath)
            value = str(item.get("value", ""))
            if value not in keys:
                self.checker.report(
                    "SD-E237", f"{rpath}.value",
                    N_("'%(value)s' is not one of the choices of %(field)s"), item,
                    "value" if "value" in item else None, value=value, field=f.name,
                    **self.checker.did_you_mean(value, keys))
                ok = False
            when = None
            if item.get("when") is not None:
                when = self.condition(item["when"], entity, f"{rpath}.when", item, "when")
                ok = ok and when is not None
            elif i != len(raw) - 1:
                self.checker.report(
                    "SD-E238", rpath,
                    N_("only the last rule may go without 'when' (the rules after it would "
                       "never apply)"), raw, i)
                ok = False
            rules.append(ClassifyRule(value=value, when=when))
        if ok and rules[-1].when is not None:
            self.checker.report(
                "SD-E238", path,
                N_("the last rule must be the default: {value: <choice>} without 'when'"),
                node, "classify")
            ok = False
        if not ok:
            return None
        self.warn_classify(f, rules, node, path)
        return dataclasses.replace(f, readonly=True, classify=tuple(rules), default=None)

    def warn_classify(self, f: FieldSpec, rules: list[ClassifyRule], node: Any, path: str
                      ) -> None:
        if f.default is not None:
            self.checker.report(
                "SD-W021", f"{path[:-len('.classify')]}.default",
                N_("the classify rules set %(field)s, so its default '%(value)s' is never "
                   "used"), node, "default", field=f.name, value=f.default)
        given = {r.value for r in rules}
        missing = [c.key for c in f.choices if c.key not in given]
        if missing:
            self.checker.report(
                "SD-W022", path,
                N_("no rule gives %(values)s, so no record will have it"), node, "classify",
                values=", ".join(missing))


def result_type(spec: RollupSpec, source: FieldSpec, scale: Any) -> tuple[str, int, int]:
    """(type, scale, precision) a rollup is stored as.

    count: integer. min/max of a date: that date type. Otherwise an integer when
    the source is one (and nothing multiplies it) or when `scale: 0` (points:
    whole numbers, fractions dropped), else a decimal with the source's scale
    (or `scale`), wide enough for a sum of many values.
    """
    if spec.agg == "count":
        return "integer", 0, 12
    if source.type in DATE_TYPES:
        return source.type, 0, 12
    if scale == 0 or (scale is None and source.type == "integer" and spec.multiply is None
                      and spec.agg != "avg"):
        return "integer", 0, 12
    if scale is None:
        scale = source.scale if source.type == "decimal" else 2
    precision = max(18, (source.precision if source.type == "decimal" else 12) + 4)
    return "decimal", scale, precision


def values_of(cond: Condition) -> list[Any]:
    """Every literal a condition compares with."""
    if cond.kind == "cmp":
        return list(cond.value) if isinstance(cond.value, tuple) else [cond.value]
    return [v for item in cond.items for v in values_of(item)]


def reads(entity: EntitySpec, f: FieldSpec) -> list[tuple[str, str]]:
    """The (entity, field) pairs the rule of `f` reads (first hop of every path)."""
    out: list[tuple[str, str]] = []
    if f.rollup is not None:
        r = f.rollup
        out += [(r.child, r.field), (r.child, r.via)]
        if r.where is not None:
            out += [(r.child, p[0]) for p in r.where.fields()]
    for rule in f.classify:
        if rule.when is not None:
            out += [(entity.name, p[0]) for p in rule.when.fields()]
    return out


def find_cycle(entities: list[EntitySpec]) -> list[tuple[str, str]] | None:
    """A cycle among rule fields (each reading the next), or None."""
    computed = {(e.name, f.name): (e, f) for e in entities for f in e.fields if f.computed}
    graph = {key: [r for r in reads(e, f) if r in computed] for key, (e, f) in computed.items()}
    done: set[tuple[str, str]] = set()

    def visit(key: tuple[str, str], trail: list[tuple[str, str]]) -> list | None:
        if key in trail:
            return trail[trail.index(key):] + [key]
        if key in done:
            return None
        for nxt in graph[key]:
            found = visit(nxt, [*trail, key])
            if found:
                return found
        done.add(key)
        return None

    for key in graph:
        found = visit(key, [])
        if found:
            return found
    return None


def with_rules(checker: Any, entities: list[EntitySpec], entities_node: Any,
               me_entity: str | None) -> list[EntitySpec]:
    """The entities with their rollups and classify rules checked and resolved."""
    by_name = {e.name: e for e in entities}
    rules = RuleChecker(checker, entities_node, by_name, me_entity)
    resolved: list[EntitySpec] = []
    for entity in entities:
        fields = []
        changed = False
        for f in entity.fields:
            new: FieldSpec | None = f
            if f.rollup is not None:
                new = rules.rollup(entity, f)
            elif "classify" in (rules.field_node(entity.name, f.name) or {}):
                new = rules.classify(entity, f)
            if new is None:  # the problem is reported; keep the field so others check on
                new = dataclasses.replace(f, readonly=True)
            changed = changed or new is not f
            fields.append(new)
        resolved.append(dataclasses.replace(entity, fields=tuple(fields)) if changed else entity)
    cycle = find_cycle(resolved)
    if cycle:
        entity, name = cycle[0]
        checker.report(
            "SD-E239", f"entities.{entity}.fields.{name}",
            N_("these rules read each other in a cycle: %(cycle)s"),
            rules.field_node(entity, name), cycle=" -> ".join(f"{e}.{n}" for e, n in cycle))
    return resolved
