"""Spec -> SQLAlchemy models.

`build_models(spec)` returns a `ModelSet`: one declarative registry and one
`MetaData` per application, holding the entity tables, the console's own tables
(audit log, job runs) and copies of Flask-AppBuilder's security tables, so that
Alembic, backups and `create_all` all see every table of the app in one place.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from flask_appbuilder.models.sqla import Model as FabModel
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    and_,
)
from sqlalchemy.orm import registry, relationship

from app.models.indexes import add_list_indexes
from app.models.system import define_system_tables
from app.models.types import EncryptedText, SubjectText
from app.privacy.lookup import LENGTH as BLIND_LENGTH
from app.privacy.lookup import column_name as blind_column
from app.schema.spec import AppSpec, EntitySpec, FieldSpec

ON_DELETE_SQL = {"cascade": "CASCADE", "set_null": "SET NULL", "restrict": "RESTRICT"}
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Return the current UTC time without tzinfo (stored as UTC everywhere)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class EntityBase:
    """Behaviour shared by every generated entity class."""

    __entity__: EntitySpec

    def __str__(self) -> str:
        title = self.__entity__.title
        value = getattr(self, title, None) if title else None
        if value is None or value == "":
            return f"{self.__entity__.label.en} #{getattr(self, 'id', '?')}"
        return str(value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'id', None)}>"


@dataclass
class ModelSet:
    """Everything `build_models` made for one spec."""

    spec: AppSpec
    metadata: MetaData
    registry: registry
    classes: dict[str, type] = field(default_factory=dict)
    m2m_tables: dict[tuple[str, str], Table] = field(default_factory=dict)
    system: dict[str, Table] = field(default_factory=dict)

    def model(self, entity: str) -> type:
        return self.classes[entity]

    def table(self, entity: str) -> Table:
        return self.classes[entity].__table__  # type: ignore[attr-defined]

    def entity_of(self, obj_or_class: Any) -> EntitySpec | None:
        cls = obj_or_class if isinstance(obj_or_class, type) else type(obj_or_class)
        return getattr(cls, "__entity__", None)


def column_type(f: FieldSpec) -> Any:
    """Return the SQLAlchemy column type for a field."""
    if f.encrypted:
        return EncryptedText()
    if f.type in ("string", "email", "phone", "url", "enum"):
        return String(f.length)
    if f.type == "text":
        return Text()
    if f.type == "integer":
        return Integer()
    if f.type == "decimal":
        return Numeric(f.precision, f.scale)
    if f.type == "boolean":
        return Boolean()
    if f.type == "date":
        return Date()
    if f.type == "datetime":
        return DateTime()
    raise ValueError(f"no column type for {f.type}")


def column_default(f: FieldSpec) -> Any:
    """The column default of a field; `$me`/`$user` are the record service's, not SQL's."""
    if f.default is None or f.default in ("$me", "$user"):
        return None
    if f.type == "date" and f.default == "today":
        return lambda: utcnow().date()
    if f.type == "datetime" and f.default == "now":
        return utcnow
    return f.default


def relation_properties(entity: EntitySpec, table: Table, tables: dict[str, Table],
                        models: ModelSet) -> dict[str, Any]:
    """The ORM relationships of an entity's `relation` and `user` fields."""
    properties: dict[str, Any] = {}
    for f in entity.fields:
        if f.type == "user":
            col = table.c[f.column_name]
            properties[f.name] = relationship(
                User,
                primaryjoin=and_(col == User.id),
                foreign_keys=[col],
                lazy="select",
                viewonly=False,
            )
        elif f.is_many:
            assoc = models.m2m_tables[(entity.name, f.name)]
            target_table = tables[f.to]  # type: ignore[index]
            left_col, right_col = list(assoc.c)
            properties[f.name] = relationship(
                lambda t=f.to: models.classes[t],
                secondary=assoc,
                primaryjoin=table.c.id == left_col,
                secondaryjoin=target_table.c.id == right_col,
                lazy="select",
            )
        elif f.is_relation:
            col = table.c[f.column_name]
            # A relation to the same entity (a tree's parent) is many-to-one too.
            remote = {"remote_side": [table.c.id]} if f.to == entity.name else {}
            properties[f.name] = relationship(
                lambda t=f.to: models.classes[t],
                foreign_keys=[col],
                primaryjoin=lambda col=col, t=f.to: col == models.classes[t].id,
                lazy="select",
                **remote,
            )
    return properties


def build_models(spec: AppSpec) -> ModelSet:
    """Generate the SQLAlchemy models, tables and indexes of a spec."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    for table in FabModel.metadata.sorted_tables:
        table.to_metadata(metadata)
    reg = registry(metadata=metadata)
    models = ModelSet(spec=spec, metadata=metadata, registry=reg)
    models.system = define_system_tables(metadata)

    tables: dict[str, Table] = {}
    for entity in spec.entities:
        columns: list[Any] = [
            Column("id", Integer, primary_key=True, autoincrement=True),
        ]
        for f in entity.fields:
            if f.is_many:
                continue
            if f.is_foreign_key:
                target = "ab_user.id" if f.type == "user" else f"{f.to}.id"
                columns.append(
                    Column(
                        f.column_name,
                        Integer,
                        ForeignKey(target, ondelete=ON_DELETE_SQL[f.on_delete]),
                        nullable=not f.required,
                        index=True,
                    )
                )
                continue
            sealed = entity.is_sealed(f.name)
            columns.append(
                Column(
                    f.name,
                    SubjectText() if sealed else column_type(f),
                    nullable=not f.required,
                    unique=(f.unique and not sealed) or None,
                    default=column_default(f),
                    index=(f.name in entity.filters and not f.unique and not sealed) or None,
                )
            )
            if entity.is_blind(f.name):  # looked up by a keyed hash (app/privacy/lookup.py)
                columns.append(Column(blind_column(f.name), String(BLIND_LENGTH),
                                      unique=f.unique or None, index=(not f.unique) or None))
        columns += [
            # Optimistic locking: every write checks and bumps it (ETag / If-Match).
            Column("version", Integer, nullable=False, default=1, server_default="1"),
            Column("created_at", DateTime, nullable=False, default=utcnow, index=True),
            Column("updated_at", DateTime, nullable=False, default=utcnow, onupdate=utcnow),
            Column("created_by_id", Integer, ForeignKey("ab_user.id", ondelete="SET NULL")),
            Column("updated_by_id", Integer, ForeignKey("ab_user.id", ondelete="SET NULL")),
        ]
        tables[entity.name] = Table(entity.name, metadata, *columns)
        add_list_indexes(entity, tables[entity.name])  # order, groups, search (app/models/indexes)

    for entity in spec.entities:
        for f in entity.fields:
            if not f.is_many:
                continue
            name = f"{entity.name}_{f.name}"
            left, right = f"{entity.name}_id", f"{f.to}_id"
            if left == right:  # self-referencing many-to-many
                right = f"related_{f.to}_id"
            models.m2m_tables[(entity.name, f.name)] = Table(
                name,
                metadata,
                Column(
                    left,
                    Integer,
                    ForeignKey(f"{entity.name}.id", ondelete="CASCADE"),
                    primary_key=True,
                ),
                Column(
                    right,
                    Integer,
                    ForeignKey(f"{f.to}.id", ondelete="CASCADE"),
                    primary_key=True,
                    index=True,
                ),
            )

    for entity in spec.entities:
        cls = type(entity.class_name, (EntityBase,), {"__entity__": entity})
        table = tables[entity.name]
        properties = relation_properties(entity, table, tables, models)
        for system_col in ("created_by", "updated_by"):
            col = table.c[f"{system_col}_id"]
            properties[system_col] = relationship(
                User, primaryjoin=col == User.id, foreign_keys=[col], viewonly=True
            )
        reg.map_imperatively(
            cls, table, properties=properties, version_id_col=table.c.version
        )
        models.classes[entity.name] = cls

    reg.configure(cascade=True)
    return models


__all__ = ["ModelSet", "build_models", "utcnow"]
