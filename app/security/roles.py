"""Spec roles -> FAB roles and permissions, idempotently.

Every entity view (UI and API) uses `class_permission_name = <entity>` and
permission names equal to the schema's actions, so a grant `customer: [read,
update]` becomes the FAB permissions `can_read on customer` and `can_update on
customer`. The console's own pages (audit log, job runs, backups) use the view
menus `audit_log`, `job_run` and `backup` the same way.

`sync_roles()` makes every YAML role hold exactly what the YAML grants (plus the
personal pages every account needs and the menu entries of what it can read);
anything else on a YAML role is revoked, including grants added by hand in the
FAB role screen. `Admin` gets every permission there is. Several processes may
sync at once: a cross-process lock serialises them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.schema.spec import ACTIONS, SYSTEM_ENTITIES, AppSpec, RoleSpec
from app.state import state

log = logging.getLogger(__name__)

# The console's own pages, by the view-menu name their views use.
SYSTEM_VIEW_MENUS = SYSTEM_ENTITIES
# Pages every signed-in account may use: its own profile and password, API docs.
PERSONAL_PERMISSIONS = (
    ("can_userinfo", "UserDBModelView"),
    ("resetmypassword", "UserDBModelView"),
    ("can_this_form_get", "ResetMyPasswordView"),
    ("can_this_form_post", "ResetMyPasswordView"),
    ("can_this_form_get", "UserInfoEditView"),
    ("can_this_form_post", "UserInfoEditView"),
    ("can_get", "OpenApi"),
    ("can_show", "SwaggerView"),
    ("can_read", "dashboard"),
)
LOCK_KEY = zlib.crc32(b"schemadesk.sync_roles")


def entity_permissions() -> list[tuple[str, str]]:
    """Return every (action, view_menu) pair the schema can grant."""
    names = [e.name for e in state().spec.entities] + list(SYSTEM_VIEW_MENUS)
    return [(a, name) for name in names for a in ACTIONS]


def granted_pairs(role_spec: RoleSpec, spec: AppSpec) -> set[tuple[str, str]]:
    """Return the (permission, view_menu) pairs a YAML role grants ("*" expanded).

    `"*"` means every entity of the schema; the console's own pages (audit_log,
    job_run, backup) are granted only when named.
    """
    pairs: set[tuple[str, str]] = set()
    for entity in spec.entities:
        for action in role_spec.actions_on(entity.name):
            pairs.add((f"can_{action}", entity.name))
    for view_menu in SYSTEM_VIEW_MENUS:
        for action in role_spec.grants.get(view_menu, frozenset()):
            pairs.add((f"can_{action}", view_menu))
    return pairs


def menu_pairs(readable: set[str]) -> set[tuple[str, str]]:
    """Return the menu_access pairs for menu items whose view is readable."""
    pairs: set[tuple[str, str]] = set()
    for category in current_app.appbuilder.menu.get_list():
        for item in [category, *category.childs]:
            view = item.baseview
            if view is None or getattr(view, "class_permission_name", None) not in readable:
                continue
            pairs.add(("menu_access", item.name))
            if item is not category:
                pairs.add(("menu_access", category.name))
    return pairs


@contextlib.contextmanager
def sync_lock() -> Iterator[None]:
    """Hold a lock shared by every process on this database while syncing."""
    engine = state().db.engine
    dialect = engine.dialect.name
    if dialect == "sqlite":
        database = engine.url.database or ":memory:"
        path = Path(current_app.instance_path) / "sync_roles.lock"
        if database != ":memory:":
            path = Path(database).with_suffix(".roles.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        if dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
        else:
            conn.execute(sa.text("SELECT GET_LOCK('schemadesk_sync_roles', 120)"))
        try:
            yield
        finally:
            if dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            else:
                conn.execute(sa.text("SELECT RELEASE_LOCK('schemadesk_sync_roles')"))


def sync_roles() -> dict[str, int]:
    """Give Admin everything and make each YAML role hold exactly its grants.

    Returns the number of permissions each YAML role holds afterwards.
    """
    for attempt in range(3):
        try:
            with sync_lock():
                return _sync_roles()
        except sa.exc.IntegrityError:  # another process won a race outside the lock
            state().db.session.rollback()
            if attempt == 2:
                raise
            time.sleep(0.2)
    return {}


def _pv(sm: Any, permission: str, view_menu: str) -> Any:
    pv = sm.add_permission_view_menu(permission, view_menu)
    if pv is None:  # FAB swallowed a unique violation: it exists now
        pv = sm.find_permission_view_menu(permission, view_menu)
    return pv


def _sync_roles() -> dict[str, int]:
    appbuilder = current_app.appbuilder
    sm = appbuilder.sm
    config = current_app.config
    admin = sm.find_role(config["AUTH_ROLE_ADMIN"]) or sm.add_role(config["AUTH_ROLE_ADMIN"])
    sm.find_role(config["AUTH_ROLE_PUBLIC"]) or sm.add_role(config["AUTH_ROLE_PUBLIC"])
    appbuilder.add_permissions(update_perms=True)
    for action, view_menu in entity_permissions():
        _pv(sm, f"can_{action}", view_menu)
    # Admin: every permission on every view menu there is.
    all_pvs = set(sm.session.query(sm.permissionview_model).all())
    missing = all_pvs - set(admin.permissions)
    if missing:
        admin.permissions = list(admin.permissions) + list(missing)
        sm.session.commit()
    spec = state().spec
    counts: dict[str, int] = {}
    for role_spec in spec.roles:
        role = sm.find_role(role_spec.name) or sm.add_role(role_spec.name)
        pairs = granted_pairs(role_spec, spec)
        readable = {vm for perm, vm in pairs if perm == "can_read"}
        pairs |= menu_pairs(readable)
        pairs |= set(PERSONAL_PERMISSIONS)
        wanted = {pv for pv in (_pv(sm, p, v) for p, v in sorted(pairs)) if pv is not None}
        current = set(role.permissions)
        if wanted != current:
            role.permissions = sorted(wanted, key=lambda pv: pv.id)
            sm.session.commit()
        counts[role_spec.name] = len(wanted)
    return counts


def yaml_role_names() -> set[str]:
    """Return the names of the roles the schema manages (plus Admin)."""
    return {r.name for r in state().spec.roles} | {current_app.config["AUTH_ROLE_ADMIN"]}


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
