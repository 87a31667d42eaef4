"""An independent evaluator of the schema's row rules over rows loaded into dicts.

It reads only the spec's `Condition` objects and plain Python rows; nothing of
`app.records` (the code under test) is used. Semantics, as DESIGN.md states them:

- Admin reaches every row; a role granting the entity (any action, `"*"`
  included) without a rule reaches every row; with a rule, the rows where the
  condition holds; a user reaches the union over their roles.
- A path walks relations (many-to-one: the target row; many-to-many: any of the
  targets); the last field is compared.
- `$user` on a `user` field: equals the account; on a relation: the target's
  user field equals the account. `$me` : the relation points to the account's
  `$me` record. `$me.a.b`: the value(s) at that path from the `$me` record(s).
- `under` on a relation to a tree: the target is the node or any descendant.
- NULLs never match eq/under (nor in/ne against a value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.schema.spec import AppSpec, Condition, EntitySpec

ADMIN = "Admin"
ALL_ACTIONS = frozenset(
    ("read", "create", "update", "delete", "import", "export", "view_sensitive"))
# System columns a rule may read (the checker allows them): created_by/updated_by are users.
SYSTEM_USER_FIELDS = ("created_by", "updated_by")


@dataclass
class Rows:
    """Every row of every entity: {entity: {id: {field: value}}}.

    Many-to-one relations and user fields hold the target id (or None);
    many-to-many relations hold a frozenset of target ids.
    """

    by_entity: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    def of(self, entity: str) -> dict[int, dict[str, Any]]:
        return self.by_entity.get(entity, {})


@dataclass(frozen=True)
class Account:
    user_id: int
    username: str
    roles: tuple[str, ...]


class Oracle:
    """Decides, per account, which record ids of an entity the schema lets it reach."""

    def __init__(self, spec: AppSpec, rows: Rows):
        self.spec = spec
        self.rows = rows
        self.roles = {r.name: r for r in spec.roles}

    # -- grants -------------------------------------------------------------

    def actions(self, account: Account, entity: str) -> frozenset[str]:
        if ADMIN in account.roles:
            return ALL_ACTIONS
        found: set[str] = set()
        for name in account.roles:
            role = self.roles.get(name)
            if role is not None:
                found |= role.actions_on(entity)
        return frozenset(found)

    def sees_sensitive(self, account: Account, entity: str) -> bool:
        return "view_sensitive" in self.actions(account, entity)

    # -- rows ---------------------------------------------------------------

    def reach(self, account: Account, entity: str) -> set[int]:
        """The ids of `entity` the account reaches (empty without any grant)."""
        every = set(self.rows.of(entity))
        if ADMIN in account.roles:
            return every
        reached: set[int] = set()
        for name in account.roles:
            role = self.roles.get(name)
            if role is None or not role.actions_on(entity):
                continue
            rule = role.row_rule(entity)
            if rule is None:
                return every
            spec = self.spec.entity(entity)
            reached |= {pk for pk, row in self.rows.of(entity).items()
                        if self.holds(spec, row, rule.condition, account)}
        return reached

    def picker_reach(self, account: Account, entity: str) -> set[int]:
        """What a relation picker may offer: the rows reached, or every row when no
        role of the account touches the target (it has no rule to apply there).

        This is the documented design of `row_clause(picker=True)`: a clerk who
        must name a librarian picks among all librarians even without a grant.
        """
        if not self.actions(account, entity):
            return set(self.rows.of(entity))
        return self.reach(account, entity)

    # -- conditions ---------------------------------------------------------

    def holds(self, entity: EntitySpec, row: dict[str, Any], cond: Condition,
              account: Account) -> bool:
        if cond.kind == "and":
            return all(self.holds(entity, row, c, account) for c in cond.items)
        if cond.kind == "or":
            return any(self.holds(entity, row, c, account) for c in cond.items)
        return any(self._leaf(e, r, cond.path[-1], cond, account)
                   for e, r in self._walk(entity, row, cond.path[:-1]))

    def _walk(self, entity: EntitySpec, row: dict[str, Any], hops: tuple[str, ...]
              ) -> list[tuple[EntitySpec, dict[str, Any]]]:
        """The (entity, row) pairs reached by following `hops` from `row`."""
        found = [(entity, row)]
        for name in hops:
            nxt = []
            for e, r in found:
                f = e.field(name)
                target = self.spec.entity(f.to)  # type: ignore[arg-type]
                for pk in self._targets(r, name):
                    if pk in self.rows.of(target.name):
                        nxt.append((target, self.rows.of(target.name)[pk]))
            found = nxt
        return found

    @staticmethod
    def _targets(row: dict[str, Any], name: str) -> list[int]:
        value = row.get(name)
        if value is None:
            return []
        if isinstance(value, frozenset | set | list | tuple):
            return sorted(value)
        return [value]

    def me_ids(self, account: Account) -> set[int]:
        me = self.spec.me_entity
        if me is None:
            return set()
        user_field = self.spec.entity(me).user_field
        return {pk for pk, row in self.rows.of(me).items()
                if row.get(user_field.name) == account.user_id}  # type: ignore[union-attr]

    def me_values(self, account: Account, path: tuple[str, ...]) -> list[Any]:
        entity = self.spec.entity(self.spec.me_entity)  # type: ignore[arg-type]
        pairs = [(entity, self.rows.of(entity.name)[pk]) for pk in sorted(self.me_ids(account))]
        pairs = self._walk_from(pairs, path[:-1])
        return [r.get(path[-1]) for _, r in pairs]

    def _walk_from(self, pairs: list[tuple[EntitySpec, dict[str, Any]]], hops: tuple[str, ...]
                   ) -> list[tuple[EntitySpec, dict[str, Any]]]:
        out = []
        for e, r in pairs:
            out += self._walk(e, r, hops)
        return out

    def descendants(self, tree: str, roots: set[Any]) -> set[int]:
        parent = self.spec.entity(tree).tree_field.name  # type: ignore[union-attr]
        found = {r for r in roots if r is not None and r in self.rows.of(tree)}
        while True:
            more = {pk for pk, row in self.rows.of(tree).items()
                    if row.get(parent) in found and pk not in found}
            if not more:
                return found
            found |= more

    def _leaf(self, entity: EntitySpec, row: dict[str, Any], name: str, cond: Condition,
              account: Account) -> bool:
        if name in SYSTEM_USER_FIELDS:
            f_type, f_to, many = "user", None, False
        elif entity.has_field(name):
            f = entity.field(name)
            f_type, f_to, many = f.type, f.to, f.is_many
        else:  # id, created_at, updated_at
            f_type, f_to, many = "scalar", None, False
        value, op = cond.value, cond.op
        stored = row.get(name)
        if value == "$user":
            if f_type == "user":
                return stored is not None and stored == account.user_id
            target = self.spec.entity(f_to)  # type: ignore[arg-type]
            user_field = target.user_field.name  # type: ignore[union-attr]
            return any(self.rows.of(target.name).get(pk, {}).get(user_field) == account.user_id
                       for pk in self._targets(row, name))
        if value == "$me":
            return bool(set(self._targets(row, name)) & self.me_ids(account))
        candidates = self._targets(row, name) if many else [stored]
        if isinstance(value, str) and value.startswith("$me."):
            values = self.me_values(account, tuple(value[4:].split(".")))
            if op == "under":
                nodes = self.descendants(f_to, set(values))  # type: ignore[arg-type]
                return any(c in nodes for c in candidates if c is not None)
            if op in ("eq", "in"):
                return any(c is not None and c in values for c in candidates)
            if op == "ne":
                return any(c is not None and None not in values and c not in values
                           for c in candidates)
            value = values[0] if len(values) == 1 else None
            if value is None:
                return False
        return any(self._compare(c, op, value, f_to) for c in candidates)

    def _compare(self, stored: Any, op: str, value: Any, tree: str | None) -> bool:
        if op == "under":
            return stored is not None and stored in self.descendants(tree, {value})  # type: ignore
        if op == "eq":
            return stored is None if value is None else stored is not None and stored == value
        if op == "ne":
            return stored is not None if value is None else stored is not None and stored != value
        if stored is None:
            return False
        if op == "in":
            return stored in value
        if op == "contains":
            return str(value) in str(stored)
        return {"gt": stored > value, "gte": stored >= value, "lt": stored < value,
                "lte": stored <= value}[op]
