"""Alembic environment: the target metadata is the running app's generated metadata."""

from __future__ import annotations

from typing import Any

from alembic import context

from app.models.indexes import ensure_search_indexes, include_object
from app.models.types import EncryptedText
from app.state import state


def render_item(type_: str, obj: Any, autogen_context: Any) -> Any:
    # Encrypted columns are plain Text in the database.
    if type_ == "type" and isinstance(obj, EncryptedText):
        return "sa.Text()"
    return False


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    if type_ == "table":
        return name != "alembic_version"
    return True


def run_migrations() -> None:
    st = state()
    connection = context.config.attributes.get("connection")
    engine = st.db.engine
    options: dict[str, Any] = {
        "target_metadata": st.models.metadata,
        "render_as_batch": engine.dialect.name == "sqlite",
        "render_item": render_item,
        "include_name": include_name,
        "include_object": include_object,  # trigram indexes: ensure_search_indexes below
        "compare_type": True,
        "transaction_per_migration": False,
    }
    if connection is not None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
            _search_indexes(connection)
        return
    with engine.connect() as conn:
        context.configure(connection=conn, **options)
        with context.begin_transaction():
            context.run_migrations()
            _search_indexes(conn)


def _search_indexes(conn: Any) -> None:
    """PostgreSQL: pg_trgm and the search fields' trigram indexes (not when writing a revision)."""
    if not context.is_offline_mode():
        ensure_search_indexes(conn, state().models.metadata)


run_migrations()
