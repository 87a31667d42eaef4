"""Spec -> views: entity CRUD, menus, the home page."""

from __future__ import annotations

from typing import Any

from app.state import state
from app.views.crud import lazy_label, make_view


def register_views(appbuilder: Any) -> None:
    """Register one ModelView per entity, grouped into menus by `menu`."""
    st = state()
    spec = st.spec
    views = {}
    for entity in spec.entities:
        views[entity.name] = make_view(entity, st.models.model(entity.name), appbuilder.session)
    for entity in spec.entities:
        views[entity.name].related_views = [views[c] for c in entity.children]
    for entity in spec.entities:
        view = appbuilder.add_view(
            views[entity.name],
            entity.name,
            label=lazy_label(entity.label),
            icon="fa-table",
            category=entity.menu.en,
            category_label=lazy_label(entity.menu),
        )
        st.views[entity.name] = view
    from app.views.grid import register_grid

    register_grid()
    from app.designer.views import register_designer

    register_designer(appbuilder)
