"""The permission matrix: role × entity × action as granted in the database."""

from __future__ import annotations

import csv
import io

from flask import current_app

from app.i18n import N_
from app.schema.spec import ACTIONS
from app.security.role_labels import SYSTEM_LABELS, role_label
from app.security.roles import SYSTEM_VIEW_MENUS
from app.state import state


def matrix() -> list[tuple[str, str, dict[str, bool]]]:
    """Return rows (role, entity, {action: granted}) for every role and entity."""
    sm = current_app.appbuilder.sm
    names = [e.name for e in state().spec.entities] + list(SYSTEM_VIEW_MENUS)
    rows = []
    for role in sorted(sm.get_all_roles(), key=lambda r: r.name):
        held = {(pv.permission.name, pv.view_menu.name) for pv in role.permissions
                if pv.permission and pv.view_menu}
        for name in names:
            rows.append((role.name, name, {a: (f"can_{a}", name) in held for a in ACTIONS}))
    return rows


def matrix_csv() -> str:
    """Return the matrix as CSV: role, entity, then one 0/1 column per action."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["role", "entity", *ACTIONS])
    for role, entity, granted in matrix():
        writer.writerow([role, entity, *(int(granted[a]) for a in ACTIONS)])
    return out.getvalue()


def matrix_text() -> str:
    """Return the matrix as an aligned text table (x = granted)."""
    rows = matrix()
    width_role = max([4, *(len(r[0]) for r in rows)])
    width_entity = max([6, *(len(r[1]) for r in rows)])
    head = f"{'role':<{width_role}}  {'entity':<{width_entity}}  " + " ".join(
        f"{a:<{len(a)}}" for a in ACTIONS
    )
    lines = [head]
    for role, entity, granted in rows:
        if not any(granted.values()):
            continue
        marks = " ".join(f"{('x' if granted[a] else '-'):<{len(a)}}" for a in ACTIONS)
        lines.append(f"{role:<{width_role}}  {entity:<{width_entity}}  {marks}")
    return "\n".join(lines) + "\n"


ACTION_LABELS = {
    "read": N_("Read"),
    "create": N_("Create"),
    "update": N_("Update"),
    "delete": N_("Delete"),
    "import": N_("Import"),
    "export": N_("Export"),
    "view_sensitive": N_("View sensitive"),
}


def make_matrix_view() -> type:
    """Return the page /security/matrix/ (Admin and whoever may read the audit log)."""
    from flask import Response
    from flask_appbuilder import BaseView, expose
    from flask_appbuilder.security.decorators import has_access

    from app.i18n import current_lang, gettext
    from app.security.roles import yaml_role_names

    class PermissionMatrixView(BaseView):
        route_base = "/security/matrix"
        default_view = "index"
        class_permission_name = "audit_log"
        method_permission_name = {"index": "read", "csv": "read"}
        base_permissions = ["can_read"]

        @expose("/")
        @has_access
        def index(self) -> str:
            spec = state().spec
            rows = [r for r in matrix() if any(r[2].values())]
            return self.render_template(
                "security/matrix.html",
                rows=rows,
                actions=ACTIONS,
                action_labels={a: gettext(ACTION_LABELS[a]) for a in ACTIONS},
                entity_labels={
                    **{name: gettext(text) for name, text in SYSTEM_LABELS.items()},
                    **{e.name: e.label.get(current_lang()) for e in spec.entities},
                },
                role_labels={r[0]: role_label(r[0]) for r in rows},
                managed=yaml_role_names(),
            )

        @expose("/csv")
        @has_access
        def csv(self) -> Response:
            return Response(
                matrix_csv(),
                mimetype="text/csv",
                headers={"Content-Disposition": "attachment; filename=permission-matrix.csv"},
            )

    return PermissionMatrixView


def init_matrix(app: object, appbuilder: object) -> None:
    """Init hook: add the matrix page under the Security menu."""
    from flask_babel import lazy_gettext

    appbuilder.add_view(  # type: ignore[attr-defined]
        make_matrix_view(),
        "permission_matrix",
        label=lazy_gettext("Permission matrix"),
        icon="fa-th",
        category="Security",
    )
