"""Saved list views (视图, 场景): private to their owner, or shared by an admin with a role.

Rows of the system table `saved_view`; `state` is JSON with the list's URL
arguments (filters, search, sort, columns, page size).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import url_for

from app.i18n import current_lang
from app.records.scope import is_admin
from app.schema.spec import EntitySpec
from app.state import state

# What a saved view keeps of a list URL: the panel, the search, FAB's sort, page
# size and filters, the columns. Never the page number.
VIEW_ARG = re.compile(r"^(f_[a-z0-9_]+|q|cols|_oc_\w+|_od_\w+|psize_\w+|_flt_\d+_\w+)$")


def views_table() -> sa.Table:
    return state().models.system["saved_view"]


def role_names(user: Any) -> list[str]:
    return [r.name for r in (getattr(user, "roles", None) or [])]


def visible_views(entity: str, user: Any) -> list[dict[str, Any]]:
    """The saved views of `entity` a user sees: their own (private or shared by them), then
    those shared with a role of theirs. Another user's private view is never among them.
    """
    if user is None:
        return []
    t = views_table()
    own = t.c.user_id == user.id  # private ones, and those the user (an admin) shared
    shared = t.c.role.in_(role_names(user) or ["-"])
    stmt = sa.select(t).where(t.c.entity == entity, sa.or_(own, shared)).order_by(
        t.c.role.is_not(None), t.c.name, t.c.id)
    rows = state().db.session.execute(stmt).mappings().all()
    return [dict(r, mine=r["user_id"] == user.id and r["role"] is None,
                 owned=r["user_id"] == user.id) for r in rows]


def view_state(query_string: str) -> dict[str, Any]:
    """What a saved view keeps of a list URL's query string (see VIEW_ARG)."""
    from urllib.parse import parse_qsl

    args = {k: v for k, v in parse_qsl(query_string) if VIEW_ARG.match(k) and v}
    return {"args": args}


def view_url(entity: EntitySpec, view: dict[str, Any]) -> str:
    args = dict(json.loads(view["state"]).get("args", {}))
    args["sv"] = str(view["id"])
    return f"{url_for(f'{entity.class_name}View.list')}?{urlencode(args)}"


def default_view(entity: str, user: Any) -> dict[str, Any] | None:
    return next((v for v in visible_views(entity, user) if v["is_default"] and v["owned"]),
                None)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def save_view(entity: str, user: Any, name: str, query_string: str, role: str | None,
              is_default: bool) -> int:
    """Store a view of `entity` for `user` (shared with `role` if given); return its id."""
    t = views_table()
    session = state().db.session
    if is_default:
        session.execute(t.update().where(t.c.entity == entity, t.c.user_id == user.id)
                        .values(is_default=False))
    state_json = json.dumps(view_state(query_string), ensure_ascii=False)
    existing = session.execute(sa.select(t.c.id).where(
        t.c.entity == entity, t.c.user_id == user.id, t.c.name == name,
        t.c.role.is_(None) if role is None else t.c.role == role)).scalar()
    if existing is not None:
        session.execute(t.update().where(t.c.id == existing).values(
            state=state_json, is_default=is_default, updated_at=_now()))
        session.commit()
        return int(existing)
    result = session.execute(t.insert().values(
        user_id=user.id, entity=entity, name=name, role=role, is_default=is_default,
        state=state_json, created_at=_now(), updated_at=_now()))
    session.commit()
    return int(result.inserted_primary_key[0])


def role_label(name: str | None) -> str:
    """A role's label in the reader's language (its name if the schema does not declare it)."""
    found = next((r for r in state().spec.roles if r.name == name), None)
    return found.label.get(current_lang()) if found is not None else (name or "")


def shareable_roles(user: Any) -> list[tuple[str, str]]:
    """(name, label) of the roles an admin may share a view with; nobody else shares."""
    if user is None or not is_admin(user):
        return []
    lang = current_lang()
    return [(r.name, r.label.get(lang)) for r in state().spec.roles]
