"""Which rows an actor reaches: grants and row rules compiled to one SQL criterion.

A role's rule for an entity is a condition (`app.schema.conditions`): a field
path compared with a literal, `$user` (the account), `$me` (the record whose
`user` field is the account) or `$me.<path>`; `under` takes a node of a tree and
every node below it (a recursive CTE). Paths become nested `IN (SELECT ...)`
subqueries, so one criterion works for lists, counts, charts, exports and
single-record checks alike, on SQLite, PostgreSQL and MariaDB.

A user with several roles reaches the union of what each role reaches; a role
that grants the entity without a rule reaches every row; Admin and the CLI are
not narrowed at all.
"""

from __future__ import annotations

import itertools
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context

from app.schema.conditions import field_of
from app.schema.spec import AppSpec, Condition, EntitySpec, FieldSpec
from app.state import state

_cte_names = itertools.count(1)


def current_user_record() -> Any:
    """Return the FAB user acting now (session, JWT, or a job's actor), or None."""
    from app.context import current_actor

    if has_request_context():
        try:
            user = current_app.appbuilder.sm.current_user
        except Exception:  # noqa: BLE001 - no JWT in this request, no login manager yet
            user = None
        if user is not None and getattr(user, "is_authenticated", True):
            return user
    actor = current_actor()
    if actor.user_id is None:
        return None
    return current_app.appbuilder.sm.get_user_by_id(actor.user_id)


def is_admin(user: Any) -> bool:
    """True when `user` holds the Admin role."""
    admin = current_app.config.get("AUTH_ROLE_ADMIN", "Admin")
    return any(r.name == admin for r in (user.roles or []))


def column_of(table: sa.Table, f: FieldSpec) -> sa.Column:
    """Return the column that stores field `f` (a `<name>_id` for relations and users)."""
    if f.name in ("created_by", "updated_by"):
        return table.c[f"{f.name}_id"]
    return table.c[f.column_name]


class ScopeCompiler:
    """Compile conditions on entities to SQLAlchemy criteria for one user."""

    def __init__(self, spec: AppSpec, user_id: int):
        self.spec = spec
        self.user_id = user_id
        self.tables = state().models

    def compile(self, entity: EntitySpec, cond: Condition) -> Any:
        if cond.kind == "and":
            return sa.and_(*(self.compile(entity, c) for c in cond.items))
        if cond.kind == "or":
            return sa.or_(*(self.compile(entity, c) for c in cond.items))
        return self._path(entity, cond.path, cond)

    def _path(self, entity: EntitySpec, path: tuple[str, ...], cond: Condition) -> Any:
        f = field_of(entity, path[0])
        assert f is not None, f"{entity.name}.{path[0]}"  # the checker saw to it
        if len(path) > 1:
            target = self.spec.entity(f.to)  # type: ignore[arg-type]
            target_table = self.tables.table(target.name)
            inner = sa.select(target_table.c.id).where(self._path(target, path[1:], cond))
            return self._hop(entity, f, inner)
        return self._leaf(entity, f, cond)

    def _hop(self, entity: EntitySpec, f: FieldSpec, target_ids: Any) -> Any:
        """`entity.f` points at one of `target_ids` (a SELECT of target ids)."""
        table = self.tables.table(entity.name)
        if f.is_many:
            assoc = self.tables.m2m_tables[(entity.name, f.name)]
            left, right = list(assoc.c)
            return table.c.id.in_(sa.select(left).where(right.in_(target_ids)))
        return column_of(table, f).in_(target_ids)

    def me_ids(self) -> Any:
        """SELECT the ids of the `$me` records (the user's own employee record, say)."""
        me = self.spec.entity(self.spec.me_entity)  # type: ignore[arg-type]
        table = self.tables.table(me.name)
        return sa.select(table.c.id).where(
            table.c[me.user_field.column_name] == self.user_id  # type: ignore[union-attr]
        )

    def me_values(self, path: tuple[str, ...]) -> Any:
        """SELECT the values at `path` of the user's `$me` record(s)."""
        entity = self.spec.entity(self.spec.me_entity)  # type: ignore[arg-type]
        ids = self.me_ids()
        for i, name in enumerate(path):
            table = self.tables.table(entity.name)
            f = field_of(entity, name)
            assert f is not None
            if i == len(path) - 1:
                return sa.select(column_of(table, f)).where(table.c.id.in_(ids))
            if f.is_many:
                left, right = list(self.tables.m2m_tables[(entity.name, f.name)].c)
                ids = sa.select(right).where(left.in_(ids))
            else:
                ids = sa.select(column_of(table, f)).where(table.c.id.in_(ids))
            entity = self.spec.entity(f.to)  # type: ignore[arg-type]
        raise AssertionError("empty $me path")  # pragma: no cover

    def descendants(self, tree: EntitySpec, roots: Any) -> Any:
        """SELECT the ids of `roots` and every node below them in the tree."""
        table = self.tables.table(tree.name)
        parent = table.c[tree.tree_field.column_name]  # type: ignore[union-attr]
        name = f"sd_tree_{tree.name}_{next(_cte_names)}"
        nodes = sa.select(table.c.id.label("id")).where(table.c.id.in_(roots)).cte(
            name, recursive=True
        )
        child = table.alias()
        nodes = nodes.union_all(
            sa.select(child.c.id).where(child.c[parent.name] == nodes.c.id)
        )
        return sa.select(nodes.c.id)

    def _leaf(self, entity: EntitySpec, f: FieldSpec, cond: Condition) -> Any:
        value = cond.value
        if value == "$user":
            if f.type == "user":
                return column_of(self.tables.table(entity.name), f) == self.user_id
            target = self.spec.entity(f.to)  # type: ignore[arg-type]
            target_table = self.tables.table(target.name)
            owned = sa.select(target_table.c.id).where(
                target_table.c[target.user_field.column_name] == self.user_id  # type: ignore
            )
            return self._hop(entity, f, owned)
        if value == "$me":
            return self._hop(entity, f, self.me_ids())
        if f.is_many:  # compare the target ids, then hop
            target_table = self.tables.table(f.to)  # type: ignore[arg-type]
            inner = self._compare(target_table.c.id, cond.op, value, f)
            return self._hop(entity, f, sa.select(target_table.c.id).where(inner))
        return self._compare(column_of(self.tables.table(entity.name), f), cond.op, value, f)

    def _compare(self, column: Any, op: str, value: Any, f: FieldSpec) -> Any:
        if isinstance(value, str) and value.startswith("$me."):
            values = self.me_values(tuple(value[4:].split(".")))
            if op == "under":
                return column.in_(self.descendants(self.spec.entity(f.to), values))  # type: ignore
            if op in ("eq", "in"):
                return column.in_(values)
            if op == "ne":
                return column.not_in(values)
            value = values.scalar_subquery()
        if op == "under":
            roots = sa.select(sa.literal(value))
            return column.in_(self.descendants(self.spec.entity(f.to), roots))  # type: ignore
        if op == "eq":
            return column.is_(None) if value is None else column == value
        if op == "ne":
            return column.is_not(None) if value is None else column != value
        if op == "in":
            return column.in_(list(value))
        if op == "contains":
            return column.contains(str(value), autoescape=True)
        return {"gt": column > value, "gte": column >= value, "lt": column < value,
                "lte": column <= value}[op]


def role_spec_of(role: Any) -> Any:
    """Return the YAML role of a FAB role, or None for a role made in the browser."""
    return next((r for r in state().spec.roles if r.name == role.name), None)


def _role_touches(role: Any, role_spec: Any, entity: str) -> bool:
    """True when a role (YAML or FAB-made) holds any permission on `entity`."""
    if role_spec is not None:
        return bool(role_spec.actions_on(entity))
    return any(pv.view_menu and pv.view_menu.name == entity for pv in role.permissions)


def row_clause(entity_name: str, user: Any, picker: bool = False) -> Any | None:
    """Return the criterion of the rows `user` reaches in `entity_name`, or None for all.

    None means "every row" (Admin, a role granting the entity without a rule, no
    signed-in user: the CLI or a system job). `sa.false()` means no row at all —
    unless `picker` is set (choosing the target of a relation): a role with no
    grant on the target picks from every row, as it has no rule to apply.
    """
    if user is None or is_admin(user):
        return None
    spec = state().spec
    entity = spec.entity(entity_name)
    clauses = []
    for role in user.roles or []:
        role_spec = role_spec_of(role)
        if not _role_touches(role, role_spec, entity_name):
            continue
        rule = role_spec.row_rule(entity_name) if role_spec is not None else None
        if rule is None:
            return None
        clauses.append(ScopeCompiler(spec, user.id).compile(entity, rule.condition))
    if not clauses:
        return None if picker else sa.false()
    return clauses[0] if len(clauses) == 1 else sa.or_(*clauses)
