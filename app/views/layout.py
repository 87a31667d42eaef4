"""The console shell's helpers: the breadcrumb trail and the page language.

The side menu and the breadcrumb both come from FAB's menu tree, which the
entity views fill from the schema's `menu` categories; this module only works
out where the current request sits in that tree.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from app.i18n import N_, current_lang, gettext

# The last path segment of a page names what it does to the record.
ACTION_WORDS = {
    "show": N_("Details"),
    "edit": N_("Edit"),
    "add": N_("Add"),
    "charts": N_("Charts"),
    "import": N_("Import"),
    "userinfo": N_("Profile"),
}


def _segments(path: str) -> list[str]:
    return [part for part in urlsplit(path).path.split("/") if part]


def _menu_match(menu_items: list[Any], path: list[str]) -> tuple[Any, Any] | None:
    """Return (category, item) of the menu entry whose URL best covers `path`."""
    best: tuple[int, Any, Any] | None = None
    for category in menu_items:
        children = [c for c in category.childs if c and c.name != "-"] or [category]
        for item in children:
            try:
                wanted = _segments(item.get_url())
            except Exception:  # noqa: BLE001 - a link FAB cannot build is not a match
                continue
            common = 0
            for mine, theirs in zip(path, wanted, strict=False):
                if mine != theirs:
                    break
                common += 1
            if common and common >= len(wanted) - 1 and (best is None or common > best[0]):
                best = (common, category if item is not category else None, item)
    return (best[1], best[2]) if best else None


def menu_trail() -> list[dict[str, str | None]]:
    """Breadcrumb for this request: menu group, menu entry, then the action."""
    appbuilder = getattr(current_app, "appbuilder", None)
    if appbuilder is None:
        return []
    path = _segments(request.path)
    match = _menu_match(appbuilder.menu.get_list(), path)
    if match is None:
        return []
    category, item = match
    trail: list[dict[str, str | None]] = []
    if category is not None:
        trail.append({"label": gettext(str(category.label)), "url": None})
    trail.append({"label": gettext(str(item.label)), "url": item.get_url()})
    action = next((ACTION_WORDS[p] for p in path[1:] if p in ACTION_WORDS), None)
    if action:
        trail.append({"label": gettext(action), "url": None})
    return trail


def app_title() -> str:
    """The schema's `app.title` in the reader's language (FAB's APP_NAME is fixed)."""
    from app.state import state

    return state().spec.title.get(current_lang())


def init_layout(app: Flask, appbuilder: Any) -> None:
    """Give every template the breadcrumb and the page language; install error pages."""
    from app.views.errors import install_error_pages

    @app.context_processor
    def layout_helpers() -> dict[str, Any]:
        return {"sd_menu_trail": menu_trail, "sd_lang": current_lang, "sd_app_title": app_title}

    install_error_pages(app)
