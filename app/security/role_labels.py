"""Roles as people read them: the YAML label (操作员), not the key (operator).

FAB prints a role by its key, and its role screen dumps every permission pair
("can show on SwaggerView..."). The schema already says what each role is
called and what it may do, so the user and role screens show that instead.
Roles made on the role screen (not in the YAML) show their key and a count.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context
from flask_appbuilder.security.views import (
    UserDBModelView,
    UserGroupModelView,
    UserStatsChartView,
)
from flask_babel import lazy_gettext
from markupsafe import Markup, escape

from app.i18n import N_, current_lang, gettext

ACTION_WORDS = {
    "read": N_("view"),
    "create": N_("add"),
    "update": N_("edit"),
    "delete": N_("delete"),
    "import": N_("import"),
    "export": N_("export"),
    "view_sensitive": N_("see sensitive fields"),
}
ACTION_ORDER = list(ACTION_WORDS)
# Grants may name the system tables as well as entities.
SYSTEM_LABELS = {
    "audit_log": N_("Audit log"),
    "job_run": N_("Background jobs"),
    "backup": N_("Backups"),
}


def _spec() -> Any:
    from app.state import state

    return state().spec


def role_label(role: Any) -> str:
    """The role's name in the reader's language (YAML label, or a word for FAB's own)."""
    name = getattr(role, "name", role)
    if not has_app_context():
        return str(name)
    if name == current_app.config.get("AUTH_ROLE_ADMIN", "Admin"):
        return gettext(N_("Administrator"))
    if name == current_app.config.get("AUTH_ROLE_PUBLIC", "Public"):
        return gettext(N_("Public (not signed in)"))
    for spec_role in _spec().roles:
        if spec_role.name == name:
            return spec_role.label.get(current_lang())
    return str(name)


def roles_text(roles: Any) -> str:
    """A user's roles as one line of labels."""
    return "、".join(role_label(r) for r in roles or ()) or "—"


def grants_text(role: Any) -> Markup:
    """What a role may do, from the YAML; FAB-only roles show how many permissions they hold."""
    name = role.name
    if name == current_app.config.get("AUTH_ROLE_ADMIN", "Admin"):
        return Markup(escape(gettext(N_("Everything (administrator)"))))
    spec = _spec()
    spec_role = next((r for r in spec.roles if r.name == name), None)
    if spec_role is None:
        return Markup(
            escape(
                gettext(
                    N_("%(count)s permissions, set on this role's edit page"),
                    count=len(role.permissions or ()),
                )
            )
        )
    lang = current_lang()
    lines = []
    order = {name: i for i, name in enumerate(["*", *(e.name for e in spec.entities)])}
    for entity_name, actions in sorted(
        spec_role.grants.items(), key=lambda item: (order.get(item[0], len(order)), item[0])
    ):
        if entity_name == "*":
            what = gettext(N_("All entities"))
        elif spec.has_entity(entity_name):
            what = spec.entity(entity_name).label.get(lang)
        elif entity_name in SYSTEM_LABELS:
            what = gettext(SYSTEM_LABELS[entity_name])
        else:
            what = entity_name
        words = "、".join(gettext(ACTION_WORDS[a]) for a in ACTION_ORDER if a in actions)
        lines.append(f"{escape(what)}：{escape(words)}")
    if spec_role.rows:
        lines.append(escape(gettext(N_("Row rules limit which records this role sees."))))
    note = escape(gettext(N_("Managed by the schema file.")))
    return Markup("<br>".join([*lines, f'<span class="text-muted">{note}</span>']))


def yes_no(value: Any) -> str:
    """A flag as 是/否 (FAB prints True/False)."""
    return gettext(N_("Yes")) if value else gettext(N_("No"))


class SchemaUserDBModelView(UserDBModelView):
    """FAB's user screens, with roles shown by their labels and flags in words."""

    # Same permission names as FAB's class: roles grant "can_userinfo on UserDBModelView".
    class_permission_name = "UserDBModelView"

    formatters_columns = {
        "roles": roles_text,
        "groups": lambda groups: "、".join(str(g) for g in groups or ()) or "—",
        "active": yes_no,
    }


class SchemaGroupModelView(UserGroupModelView):
    """FAB's user groups screen with its column names translated."""

    class_permission_name = "UserGroupModelView"

    label_columns = {
        "name": lazy_gettext(N_("Name")),
        "label": lazy_gettext(N_("Display name")),
        "description": lazy_gettext(N_("Description")),
        "users": lazy_gettext(N_("Users")),
        "roles": lazy_gettext(N_("Roles")),
    }
    formatters_columns = {"roles": roles_text}


class SchemaUserStatsChartView(UserStatsChartView):
    """FAB's sign-in statistics chart with translated series and filter names."""

    class_permission_name = "UserStatsChartView"
    route_base = "/userstatschartview"

    label_columns = {
        **UserStatsChartView.label_columns,
        **{
            name: lazy_gettext(text)
            for name, text in (
                ("first_name", N_("First name")),
                ("last_name", N_("Last name")),
                ("username", N_("User name")),
                ("email", N_("E-mail")),
                ("active", N_("Active")),
                ("roles", N_("Roles")),
                ("groups", N_("Groups")),
                ("created_on", N_("Created on")),
                ("changed_on", N_("Changed on")),
                ("last_login", N_("Last login")),
                ("login_count", N_("Sign-ins")),
                ("fail_login_count", N_("Failed sign-ins")),
            )
        },
    }
    definitions = [
        {"label": lazy_gettext(N_("Sign-ins")), "group": "username", "series": ["login_count"]},
        {
            "label": lazy_gettext(N_("Failed sign-ins")),
            "group": "username",
            "series": ["fail_login_count"],
        },
    ]


# FAB permission names -> what they allow, for the edit form of roles made on screen.
PERMISSION_WORDS = {
    "can_read": N_("view"),
    "can_create": N_("add"),
    "can_update": N_("edit"),
    "can_delete": N_("delete"),
    "can_import": N_("import"),
    "can_export": N_("export"),
    "can_view_sensitive": N_("see sensitive fields"),
    "can_list": N_("list"),
    "can_show": N_("view"),
    "can_add": N_("add"),
    "can_edit": N_("edit"),
    "can_download": N_("download"),
    "menu_access": N_("see in the menu"),
    "can_get": N_("read"),
    "can_post": N_("send"),
    "can_put": N_("change"),
    "can_info": N_("read"),
    "can_userinfo": N_("own profile"),
    "resetmypassword": N_("change own password"),
    "resetpasswords": N_("reset passwords"),
    "userinfoedit": N_("edit own profile"),
    "can_this_form_get": N_("open the form"),
    "can_this_form_post": N_("submit the form"),
    "can_chart": N_("chart"),
    "copyrole": N_("copy role"),
    "can_update_role_groups": N_("change a role's groups"),
    "can_update_role_users": N_("change a role's users"),
    "can_list_role_permissions": N_("list a role's permissions"),
    "can_add_role_permissions": N_("add permissions to a role"),
}
# FAB's own screens (view menus) by the names people know them by.
FAB_VIEW_WORDS = {
    "UserDBModelView": N_("Users"),
    "RoleModelView": N_("Roles"),
    "SchemaRoleModelView": N_("Roles"),
    "UserGroupModelView": N_("Groups"),
    "UserStatsChartView": N_("User statistics"),
    "ResetMyPasswordView": N_("Own password"),
    "ResetPasswordView": N_("Password reset"),
    "UserInfoEditView": N_("Own profile"),
    "SwaggerView": N_("API documentation"),
    "OpenApi": N_("API documentation"),
    "MenuApi": N_("Menu API"),
    "Security": N_("Security"),
    # FAB's security REST API resources
    "Permission": N_("Permissions (API)"),
    "Role": N_("Roles (API)"),
    "User": N_("Users (API)"),
    "Group": N_("Groups (API)"),
    "ViewMenu": N_("View menus (API)"),
    "PermissionViewMenu": N_("Permission pairs (API)"),
    "user_session": N_("Sessions"),
}


def permission_label(pv: Any) -> str:
    """A permission pair as "查看 · 客户" (FAB prints "can_read on customer")."""
    perm = getattr(pv.permission, "name", "") or ""
    view = getattr(pv.view_menu, "name", "") or ""
    what = gettext(PERMISSION_WORDS[perm]) if perm in PERMISSION_WORDS else perm
    return f"{what} · {view_menu_label(view)}"


def view_menu_label(name: str) -> str:
    """An entity, system table, menu category or FAB screen by its label."""
    if not has_app_context():
        return name
    spec = _spec()
    lang = current_lang()
    if spec.has_entity(name):
        return spec.entity(name).label.get(lang)
    if name in SYSTEM_LABELS:
        return gettext(SYSTEM_LABELS[name])
    if name in FAB_VIEW_WORDS:
        return gettext(FAB_VIEW_WORDS[name])
    for entity in spec.entities:
        if entity.menu.en == name:
            return entity.menu.get(lang)
    # A menu entry or group ("menu_access on List Roles") by its label in the menu.
    for group in current_app.appbuilder.menu.get_list():
        for item in [group, *(c for c in group.childs if c)]:
            if item.name == name and item.label:
                return gettext(str(item.label))
    return name


def install_role_labels() -> None:
    """Make every place FAB prints a role (forms, pickers, detail pages) use its label,
    and a permission pair readable words."""
    from flask_appbuilder.security.sqla.models import PermissionView, Role

    Role.__str__ = role_label  # type: ignore[method-assign,assignment]
    PermissionView.__str__ = permission_label  # type: ignore[method-assign,assignment]
    Role.sd_label = property(role_label)  # type: ignore[attr-defined]
    Role.sd_grants = property(grants_text)  # type: ignore[attr-defined]
