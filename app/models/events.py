"""Session events: system columns (created_by / updated_by) from the actor."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.context import current_actor
from app.models import ModelSet, utcnow


def install_model_events(scoped: Any, models: ModelSet) -> None:
    """Fill created_by/updated_by/updated_at on every flush of this app's session."""
    from app.state import listen

    entity_classes = tuple(models.classes.values())

    def before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
        actor_id = current_actor().user_id
        for obj in session.new:
            if isinstance(obj, entity_classes):
                if obj.created_by_id is None:
                    obj.created_by_id = actor_id
                obj.updated_by_id = actor_id
        for obj in session.dirty:
            if isinstance(obj, entity_classes) and session.is_modified(obj):
                obj.updated_by_id = actor_id
                obj.updated_at = utcnow()

    listen(scoped.session_factory, "before_flush", before_flush)
