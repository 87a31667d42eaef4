"""The permission matrix: role × entity × action as granted in the database."""

from __future__ import annotations

import csv
import io

from flask import current_app

from app.schema.spec import ACTIONS
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
