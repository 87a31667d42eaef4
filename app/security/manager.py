"""SchemaDesk's security manager: FAB's, with our policies on top."""

from __future__ import annotations

from typing import Any

from flask_appbuilder import expose, has_access
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import RoleModelView
from flask_babel import lazy_gettext

from app.i18n import N_, gettext
from app.security.mfa_api import SecurityApi
from app.security.role_labels import (
    SchemaGroupModelView,
    SchemaUserDBModelView,
    SchemaUserStatsChartView,
    install_role_labels,
)
from app.security.user_links import UserLinkMixin


class SchemaRoleModelView(RoleModelView):
    """FAB's role screen, refusing to change or delete the roles the schema manages.

    A YAML role is rewritten from the schema on every start and schema apply,
    so a change made here would silently vanish; it is refused with a message
    saying where to make it instead. Roles made here (not in the YAML) work as
    in plain FAB. Roles show their YAML label and grants (app.security.role_labels).
    """

    list_columns = ["sd_label", "sd_grants"]
    search_columns = ["name"]  # a permissions filter would list every raw pair
    show_columns = ["sd_label", "sd_grants"]
    label_columns = {
        **RoleModelView.label_columns,
        "sd_label": lazy_gettext(N_("Role")),
        "name": lazy_gettext(N_("Role key")),
        "sd_grants": lazy_gettext(N_("May do")),
        "groups": lazy_gettext(N_("Groups")),
        "user": lazy_gettext(N_("Users")),
    }

    def _refuse_if_managed(self, item: Any) -> None:
        import sqlalchemy as sa

        from app.security.roles import yaml_role_names

        history = sa.inspect(item).attrs.name.history
        names = {item.name, *(history.deleted or ())}
        if names & yaml_role_names():
            self.datamodel.session.rollback()
            raise ValueError(gettext(
                N_("Role %(role)s is managed by the schema file: change its grants under "
                   "roles: in the YAML and run schemadesk schema apply."),
                role=item.name,
            ))

    def pre_update(self, item: Any) -> None:
        self._refuse_if_managed(item)

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk: Any) -> Any:
        """A YAML role's edit form would only show FAB's permission pairs and then refuse
        to save; send the admin to its page with the reason instead."""
        from flask import flash, redirect, url_for

        from app.security.role_labels import role_label
        from app.security.roles import yaml_role_names

        item = self.datamodel.get(pk)
        if item is not None and item.name in yaml_role_names():
            flash(gettext(
                N_("Role %(role)s is managed by the schema file: change its grants under "
                   "roles: in the YAML and run schemadesk schema apply."),
                role=role_label(item),
            ), "warning")
            return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        return super().edit(pk)

    def pre_delete(self, item: Any) -> None:
        self._refuse_if_managed(item)


class SchemaUserView(UserLinkMixin, SchemaUserDBModelView):
    """User screens: roles by label, the link to the person's record (app.security.user_links)."""


class SchemaDeskSecurityManager(SecurityManager):
    """FAB's SQLAlchemy security manager; roles come from the YAML (app.security.roles)."""

    rolemodelview = SchemaRoleModelView
    userdbmodelview = SchemaUserView
    groupmodelview = SchemaGroupModelView
    userstatschartview = SchemaUserStatsChartView

    def __init__(self, appbuilder: Any) -> None:
        install_role_labels()
        super().__init__(appbuilder)
    security_api = SecurityApi  # the JWT login asks for the two-factor code (app/security/mfa)

    @property
    def is_auth_limited(self) -> bool:
        """FAB's login limiter counts successful sign-ins too; ours counts failures only.

        `AUTH_RATE_LIMITED` switches on app.security.login_limit instead.
        """
        return False

    def auth_user_db(self, username: str, password: str) -> Any:
        """FAB's password check; a failure counts towards the sign-in limits.

        A success may still need the second factor (app/security/mfa.py).
        """
        user = super().auth_user_db(username, password)
        self._after_password(username, user)
        return user

    def auth_user_ldap(self, username: str, password: str) -> Any:
        """FAB's LDAP check; a failure counts towards the sign-in limits."""
        user = super().auth_user_ldap(username, password)
        self._after_password(username, user)
        return user

    @staticmethod
    def _after_password(username: str, user: Any) -> None:
        from app.security.login_limit import record_failed_login
        from app.security.mfa import password_accepted

        if user is None:
            record_failed_login(username)
        else:
            password_accepted(user)

    def update_user(self, user: Any, commit: bool = True) -> Any:
        """FAB's update; a new password ends the user's other sessions (app.security.sessions).

        FAB's `reset_password` (an admin's reset, or users changing their own)
        comes through here. Users who change their own password keep the
        session they did it from; every other session of theirs is signed out.
        """
        import sqlalchemy as sa
        from flask import has_request_context
        from flask_login import current_user

        from app.security.sessions import current_sid, revoke_user_sessions

        new_password = sa.inspect(user).attrs.password.history.has_changes()
        result = super().update_user(user, commit)
        if new_password and result is not False:
            own = has_request_context() and getattr(current_user, "id", None) == user.id
            revoke_user_sessions(user.id, keep_sid=current_sid() if own else None)
        return result

    def _has_view_access(self, user: object, permission_name: str, view_name: str) -> bool:
        """FAB's check, answered from the user's permissions loaded once per request.

        A page asks about every menu entry and action; FAB makes each one a
        query (30 on a CRM list page); here the request makes one.
        """
        from flask import g, has_request_context

        if not has_request_context():
            return super()._has_view_access(user, permission_name, view_name)
        cache = g.setdefault("_sd_access", {})
        uid = getattr(user, "id", None)
        answer = cache.get((uid, permission_name, view_name))
        if answer is None:
            answer = cache[uid, permission_name, view_name] = self._request_access(
                cache, user, permission_name, view_name)
        return answer

    def _request_access(self, cache: dict[Any, Any], user: object, permission_name: str,
                        view_name: str) -> bool:
        roles = self.get_user_roles(user)
        if any(
            role.name in self.builtin_roles
            and self._has_access_builtin_roles(role, permission_name, view_name)
            for role in roles
        ):
            return True
        key = ("_sd_perms", getattr(user, "id", None))
        if key not in cache:
            role_ids = [role.id for role in roles if role.name not in self.builtin_roles]
            cache[key] = self._permission_pairs(role_ids)
        return (permission_name, view_name) in cache[key]

    def _permission_pairs(self, role_ids: list[int]) -> set[tuple[str, str]]:
        """Every (permission, view menu) the roles hold, in one query."""
        if not role_ids:
            return set()
        from flask_appbuilder.security.sqla.models import assoc_permissionview_role

        pv = self.permissionview_model
        rows = (
            self.session.query(self.permission_model.name, self.viewmenu_model.name)
            .join(pv, pv.permission_id == self.permission_model.id)
            .join(self.viewmenu_model, pv.view_menu_id == self.viewmenu_model.id)
            .join(
                assoc_permissionview_role,
                assoc_permissionview_role.c.permission_view_id == pv.id,
            )
            .filter(assoc_permissionview_role.c.role_id.in_(role_ids))
            .all()
        )
        return {(perm, view) for perm, view in rows}
