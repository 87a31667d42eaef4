"""Alembic environment: the target metadata is the running app's generated metadata."""

from __future__ import annotations

from typing import Any

from alembic import context

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
        "compare_type": True,
        "transaction_per_migration": False,
    }
    if connection is not None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    with engine.connect() as conn:
        context.configure(connection=conn, **options)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
