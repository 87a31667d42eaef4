"""Spec roles -> FAB roles and permissions, idempotently.

Every entity view uses `class_permission_name = <entity>` and permission names
equal to the schema's actions, so a grant `customer: [read, update]` becomes the
FAB permissions `can_read on customer` and `can_update on customer`.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.schema.spec import ACTIONS
from app.state import state

# The console's own pages, by the view-menu name their views use.
SYSTEM_VIEW_MENUS = ("audit_log", "job_run", "backup", "dashboard")


def entity_permissions() -> list[tuple[str, str]]:
    """Every (action, view_menu) pair the schema can grant."""
    pairs = [(a, e.name) for e in state().spec.entities for a in ACTIONS]
    return pairs


def sync_roles() -> dict[str, int]:
    """Create permissions, give Admin everything, make YAML roles exactly as granted."""
    appbuilder = current_app.appbuilder
    sm = appbuilder.sm
    admin = sm.find_role(current_app.config["AUTH_ROLE_ADMIN"]) or sm.add_role(
        current_app.config["AUTH_ROLE_ADMIN"]
    )
    sm.find_role(current_app.config["AUTH_ROLE_PUBLIC"]) or sm.add_role(
        current_app.config["AUTH_ROLE_PUBLIC"]
    )
    appbuilder.add_permissions(update_perms=True)
    for action, view_menu in entity_permissions():
        pv = sm.add_permission_view_menu(f"can_{action}", view_menu)
        sm.add_permission_role(admin, pv)
    spec = state().spec
    counts: dict[str, int] = {}
    for role_spec in spec.roles:
        role = sm.find_role(role_spec.name) or sm.add_role(role_spec.name)
        wanted: set[Any] = set()
        for entity in list(spec.entities):
            for action in role_spec.actions_on(entity.name):
                wanted.add(sm.add_permission_view_menu(f"can_{action}", entity.name))
        for view_menu in SYSTEM_VIEW_MENUS:
            for action in role_spec.actions_on(view_menu) if view_menu != "dashboard" else ():
                wanted.add(sm.add_permission_view_menu(f"can_{action}", view_menu))
        wanted |= set(menu_access(sm, role_spec, spec))
        current = set(role.permissions)
        for pv in current - wanted:
            sm.del_permission_role(role, pv)
        for pv in wanted - current:
            sm.add_permission_role(role, pv)
        counts[role_spec.name] = len(wanted)
    return counts


def menu_access(sm: Any, role_spec: Any, spec: Any) -> list[Any]:
    """Menu entries for the entities a role can read, and their categories."""
    result = []
    for entity in spec.entities:
        if "read" in role_spec.actions_on(entity.name):
            result.append(sm.add_permission_view_menu("menu_access", entity.name))
            result.append(sm.add_permission_view_menu("menu_access", entity.menu.en))
    return result


def ensure_admin(password: str | None) -> tuple[str, str | None]:
    """Create the `admin` user if missing; return (username, password if generated)."""
    import secrets

    sm = current_app.appbuilder.sm
    if sm.find_user(username="admin") is not None:
        return "admin", None
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(12)
    role = sm.find_role(current_app.config["AUTH_ROLE_ADMIN"])
    user = sm.add_user("admin", "Admin", "User", "admin@example.com", role, password=password)
    if not user:
        raise RuntimeError("could not create the admin user")
    return "admin", generated
