"""The condition syntax (row rules today; `when` and `classify` share it): parse and check.

`{field: value}`, `{field: {eq|ne|gt|gte|lt|lte|in|contains|under: x}}`,
`{and: [...]}`, `{or: [...]}`; several keys in one mapping all hold. A field may
be a path of relations (`customer.owner`); values are literals, `$user`, `$me`
or `$me.<path>`. Every problem is reported with its code and YAML path.
"""

from __future__ import annotations

from typing import Any

from app.i18n import N_
from app.schema.spec import CONDITION_OPS, Condition, EntitySpec, FieldSpec, Label

# System columns a condition may read; created_by/updated_by lead to the user.
SYSTEM_FIELDS = {
    "id": FieldSpec("id", "integer", Label("ID", "ID")),
    "created_at": FieldSpec("created_at", "datetime", Label("Created at", "创建时间")),
    "updated_at": FieldSpec("updated_at", "datetime", Label("Updated at", "更新时间")),
    "created_by": FieldSpec("created_by", "user", Label("Created by", "创建人")),
    "updated_by": FieldSpec("updated_by", "user", Label("Updated by", "更新人")),
}


def field_of(entity: EntitySpec, name: str) -> FieldSpec | None:
    """Return the field (or system column) `name` of `entity`, or None."""
    if entity.has_field(name):
        return entity.field(name)
    return SYSTEM_FIELDS.get(name)


class ConditionChecker:
    """Parse condition mappings against entities, reporting through a `Checker`."""

    def __init__(self, checker: Any, by_name: dict[str, EntitySpec], me_entity: str | None):
        self.checker = checker
        self.by_name = by_name
        self.me_entity = me_entity

    def parse(self, node: Any, entity: EntitySpec, path: str, parent: Any, key: Any
              ) -> Condition | None:
        """Return the condition of `node` (a mapping) on `entity`, or None on a problem."""
        if not self.checker.expect_map(node, path, parent, key):
            return None
        items: list[Condition] = []
        ok = True
        for name, value in node.items():
            item = self._item(str(name), value, entity, f"{path}.{name}", node)
            if item is None:
                ok = False
            else:
                items.append(item)
        if not ok:
            return None
        if not items:
            self.checker.report("SD-E102", path, N_("a condition needs at least one field"),
                                parent, key)
            return None
        return items[0] if len(items) == 1 else Condition("and", items=tuple(items))

    def _item(self, name: str, value: Any, entity: EntitySpec, path: str, node: Any
              ) -> Condition | None:
        if name in ("and", "or"):
            if not self.checker.expect_list(value, path, node, name):
                return None
            parts = [self.parse(v, entity, f"{path}[{i}]", value, i) for i, v in enumerate(value)]
            if any(p is None for p in parts):
                return None
            return Condition(name, items=tuple(parts))  # type: ignore[arg-type]
        target = self.walk(entity, name, path, node, name)
        if target is None:
            return None
        if isinstance(value, dict):
            ops = []
            for op, operand in value.items():
                cmp = self._compare(target, name, str(op), operand, f"{path}.{op}", value)
                if cmp is None:
                    return None
                ops.append(cmp)
            if not ops:
                self.checker.report("SD-E102", path, N_("a comparison needs an operator"),
                                    node, name)
                return None
            return ops[0] if len(ops) == 1 else Condition("and", items=tuple(ops))
        return self._compare(target, name, "eq", value, path, node, key=name)

    def walk(self, entity: EntitySpec, dotted: str, path: str, node: Any, key: Any
             ) -> FieldSpec | None:
        """Follow `a.b.c` from `entity`; return the last field (every hop a relation)."""
        current = entity
        parts = dotted.split(".")
        for i, part in enumerate(parts):
            f = field_of(current, part)
            if f is None:
                options = [x.name for x in current.fields]
                self.checker.report(
                    "SD-E152", path, N_("'%(name)s' is not a field of %(entity)s"), node, key,
                    name=part, entity=current.name, **self.checker.did_you_mean(part, options))
                return None
            if i == len(parts) - 1:
                return self._readable(current, f, path, node, key)
            if not f.is_relation or f.to not in self.by_name:
                self.checker.report(
                    "SD-E158", path,
                    N_("'%(name)s' is not a relation, so the path cannot go on past it"),
                    node, key, name=part)
                return None
            current = self.by_name[f.to]
        return None  # pragma: no cover - the loop always returns

    def _readable(self, entity: EntitySpec, f: FieldSpec, path: str, node: Any, key: Any
                  ) -> FieldSpec | None:
        """The field, unless the database holds only ciphertext for it (encrypted or sealed):
        a condition on it would compare ciphertext and silently never match."""
        if f.encrypted or entity.is_sealed(f.name):
            self.checker.report(
                "SD-E159", path,
                N_("'%(name)s' is stored encrypted, so a condition cannot compare it; "
                   "use another field"), node, key, name=f.name)
            return None
        return f

    def _compare(self, target: FieldSpec, name: str, op: str, value: Any, path: str,
                 node: Any, key: Any = None) -> Condition | None:
        key = op if key is None else key
        if op not in CONDITION_OPS:
            self.checker.report(
                "SD-E156", path, N_("unknown operator '%(op)s'; operators are %(ops)s"),
                node, key, op=op, ops=", ".join(CONDITION_OPS),
                **self.checker.did_you_mean(op, CONDITION_OPS))
            return None
        if op == "under" and not self._is_tree_relation(target):
            self.checker.report(
                "SD-E157", path,
                N_("'under' needs a relation to a tree (an entity with a 'parent' relation "
                   "to itself); '%(name)s' is not one"), node, key, name=name)
            return None
        if op == "in" and not isinstance(value, list):
            self.checker.expect_list(value, path, node, key)
            return None
        if isinstance(value, str) and value.startswith("$") and not self._variable(
                target, name, value, path, node, key):
            return None
        path_parts = tuple(name.split("."))
        return Condition("cmp", path=path_parts, op=op, value=_plain(value))

    def _is_tree_relation(self, f: FieldSpec) -> bool:
        target = self.by_name.get(f.to or "")
        return f.is_foreign_key and target is not None and target.tree_field is not None

    def _variable(self, target: FieldSpec, name: str, value: str, path: str, node: Any,
                  key: Any) -> bool:
        if value == "$user":
            leads = target.type == "user" or (
                target.is_relation and target.to in self.by_name
                and self.by_name[target.to].user_field is not None)
            if not leads:
                self.checker.report(
                    "SD-E153", path,
                    N_("'%(name)s' must be a user field, or a relation to an entity with a "
                       "user field"), node, key, name=name)
            return leads
        if value == "$me" or value.startswith("$me."):
            if self.me_entity is None:
                self.checker.report(
                    "SD-E154", path,
                    N_("'%(value)s' needs an entity with a user field (whose record is $me)"),
                    node, key, value=value)
                return False
            if value == "$me":
                if target.to != self.me_entity:
                    self.checker.report(
                        "SD-E153", path,
                        N_("'%(name)s' must be a relation to %(entity)s to compare with $me"),
                        node, key, name=name, entity=self.me_entity)
                    return False
                return True
            return self.walk(self.by_name[self.me_entity], value[4:], path, node, key) is not None
        self.checker.report(
            "SD-E154", path,
            N_("unknown value '%(value)s'; use $user, $me, $me.<field> or a plain value"),
            node, key, value=value)
        return False


def _plain(value: Any) -> Any:
    """Return ruamel's scalar and list types as plain Python values."""
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)
