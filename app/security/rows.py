"""Row rules: `rows: {entity: {field: $user}}` -> a SQLAlchemy criterion per user.

`row_filter(entity)` is the one entry point every reader of entity rows calls
(CRUD views, the REST API, exports, charts, relation pickers). It returns None
when no rule applies to the current user (Admin, a role that grants the entity
without a rule, the CLI or the system) and otherwise a boolean clause over the
entity's table: a `user` field equal to the account, or — one hop — a relation
to an entity whose `user` field is the account (`customer.owner ->
employee.account`). A user with several roles sees the union of what each
role lets them see.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context
from flask_appbuilder.models.filters import BaseFilter

from app.i18n import N_
from app.state import state


def current_user_record() -> Any:
    """Return the FAB user acting now (session, JWT, or a job's actor), or None."""
    if has_request_context():
        user = None
        try:
            user = current_app.appbuilder.sm.current_user
        except Exception:  # noqa: BLE001 - no JWT in this request, no login manager yet
            user = None
        if user is not None and not getattr(user, "is_authenticated", True):
            user = None
        return user if user is not None else _user_from_actor()
    return _user_from_actor()


def _user_from_actor() -> Any:
    from app.context import current_actor

    actor = current_actor()
    if actor.user_id is None:
        return None
    return current_app.appbuilder.sm.get_user_by_id(actor.user_id)


def is_admin(user: Any) -> bool:
    """True when `user` holds the Admin role."""
    admin = current_app.config.get("AUTH_ROLE_ADMIN", "Admin")
    return any(r.name == admin for r in (user.roles or []))


def _role_touches(role: Any, entity: str) -> bool:
    """True when a role (YAML or FAB-made) holds any permission on `entity`."""
    spec = state().spec
    for role_spec in spec.roles:
        if role_spec.name == role.name:
            return bool(role_spec.actions_on(entity))
    return any(pv.view_menu and pv.view_menu.name == entity for pv in role.permissions)


def rule_criterion(entity_name: str, field_name: str, user_id: int) -> Any:
    """Return the clause `entity.field leads to user_id` (direct or one hop)."""
    st = state()
    entity = st.spec.entity(entity_name)
    table = st.models.table(entity_name)
    f = entity.field(field_name)
    if f.type == "user":
        return table.c[f.column_name] == user_id
    target = st.spec.entity(f.to)  # type: ignore[arg-type]
    user_field = next(x for x in target.fields if x.type == "user")
    target_table = st.models.table(target.name)
    owned = sa.select(target_table.c.id).where(
        target_table.c[user_field.column_name] == user_id
    )
    if f.is_many:
        assoc = st.models.m2m_tables[(entity_name, f.name)]
        left, right = list(assoc.c)
        return table.c.id.in_(sa.select(left).where(right.in_(owned)))
    return table.c[f.column_name].in_(owned)


def row_filter(entity_name: str, picker: bool = False) -> Any | None:
    """Return the row-rule clause for `entity_name` and the current user, or None.

    None means "every row" (Admin, no rule on any of the user's roles that reach
    the entity, CLI/system). `sa.false()` means the user reaches no rows at all —
    unless `picker` is set (choosing the target of a relation): a role with no
    grant on the target then picks from every row, as it has no rule to apply.
    """
    user = current_user_record()
    if user is None:
        return None
    if is_admin(user):
        return None
    spec = state().spec
    clauses = []
    for role in user.roles or []:
        if not _role_touches(role, entity_name):
            continue
        role_spec = next((r for r in spec.roles if r.name == role.name), None)
        rule = role_spec.row_rule(entity_name) if role_spec else None
        if rule is None:
            return None
        clauses.append(rule_criterion(entity_name, rule.field, user.id))
    if not clauses:
        return None if picker else sa.false()
    return clauses[0] if len(clauses) == 1 else sa.or_(*clauses)


def apply_row_filter(query: Any, entity_name: str, picker: bool = False) -> Any:
    """Return `query` (ORM Query or Select) narrowed by the entity's row rule."""
    criterion = row_filter(entity_name, picker=picker)
    return query if criterion is None else query.filter(criterion)


class FilterRowRule(BaseFilter):
    """FAB base filter applying the row rule to list, show, edit, delete and actions."""

    name = N_("Row rule")
    arg_name = "sdrow"

    def apply(self, query: Any, value: Any) -> Any:
        entity = getattr(self.datamodel, "entity", None)
        name = entity.name if entity is not None else self.datamodel.obj.__entity__.name
        # Views only run this for users who may read the entity; pickers (query
        # rel fields) run it for the target of a relation.
        return apply_row_filter(query, name, picker=True)


def no_value() -> None:
    """The (unused) value of the row-rule base filter."""
    return None
