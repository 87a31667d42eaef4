"""Change capture: ORM session events turn every flush into audit entries.

One mechanism for every path (UI, API, CLI, jobs, restore): listeners on the
app's sessionmaker. `before_flush` reads the attribute history of dirty and
deleted objects (old values, many-to-many collections, rows that the database
will cascade to), `after_flush` completes creates (ids and defaults are known
then) and turns the staged changes into entries, and `before_commit` appends
them to the hash chain in the same transaction. A rollback drops them.

Only changes made through ORM objects are seen; code that writes rows with
bulk statements calls `record_event` for them.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import click
import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.audit import chain
from app.context import Actor, current_actor
from app.privacy.sealing import erased_diff, erasing, sealed_change
from app.records.masking import logged_value
from app.schema.spec import EntitySpec, FieldSpec

VALUE_LIMIT = 1000  # characters of one value kept in a diff (TEXT is 64 KB on MariaDB)
TEXT_LIMIT = 60000  # bytes of changes/detail JSON
LIST_LIMIT = 40  # refs in a many-to-many diff kept in full before/after form
PENDING = "audit_pending"
BULK = "audit_bulk"
LINKS = "audit_links"
STAGED = "audit_staged"
AUDITED = "sd_audited"  # execution option: the writer staged the entries (app.audit.bulk)


@dataclass(frozen=True)
class Tracked:
    """One audited attribute of a mapped class."""

    name: str
    kind: str  # scalar | ref | many | secret
    column: str | None = None  # the FK column of a ref
    spec: FieldSpec | None = None
    title_attr: str | None = None  # for refs to FAB models: username, name


@dataclass(frozen=True)
class Audited:
    """How a mapped class is audited: its entity name and attributes."""

    entity: str
    fields: tuple[Tracked, ...]
    spec: EntitySpec | None = None
    title_attr: str | None = None


class Capture:
    """The session listeners of one app (installed by `install`)."""

    def __init__(self, app: Any, st: Any, sm: Any) -> None:
        self.app = app
        self.db = st.db
        self.log: sa.Table = st.models.system["audit_log"]
        self.head: sa.Table = st.models.system["audit_head"]
        self.factory = st.db.session.session_factory
        self.audited: dict[type, Audited] = {}
        self.cascades: dict[str, list[tuple[EntitySpec, FieldSpec]]] = {}
        for entity in st.spec.entities:
            self.audited[st.models.model(entity.name)] = Audited(
                entity.name, tuple(_entity_fields(entity)), entity
            )
            for f in entity.fields:
                if f.is_relation and not f.is_many and f.on_delete in ("cascade", "set_null"):
                    self.cascades.setdefault(f.to or "", []).append((entity, f))
        self.classes_by_entity = {a.entity: cls for cls, a in self.audited.items()}
        self.entity_tables = {e.name: st.models.table(e.name) for e in st.spec.entities}
        self.link_tables = {t.name: (owner, name, t)
                            for (owner, name), t in st.models.m2m_tables.items()}
        user_model, role_model = sm.user_model, sm.role_model
        self.audited[user_model] = Audited(
            "ab_user",
            (
                Tracked("username", "scalar"),
                Tracked("first_name", "scalar"),
                Tracked("last_name", "scalar"),
                Tracked("email", "scalar"),
                Tracked("active", "scalar"),
                Tracked("password", "secret"),
                Tracked("roles", "many", title_attr="name"),
            ),
            title_attr="username",
        )
        self.audited[role_model] = Audited(
            "ab_role", (Tracked("name", "scalar"), Tracked("permissions", "many")),
            title_attr="name",
        )

    # -- session events -------------------------------------------------------

    def before_flush(self, session: Session, _ctx: Any, _instances: Any) -> None:
        staged = session.info.setdefault(STAGED, [])
        actor = acting_actor()
        deleted_ids = {id(o) for o in session.deleted}
        for obj in list(session.deleted):
            audited = self.audited.get(type(obj))
            if audited is None:
                continue
            values = {t.name: self._current(session, obj, t) for t in audited.fields}
            changes = {name: (value, None) for name, value in values.items()}
            staged.append(("delete", obj, audited, changes, self._title(obj, audited), None,
                           actor))
            if audited.spec is not None:
                self._stage_cascades(session, obj, audited, staged, actor, deleted_ids, set())
        for obj in list(session.dirty):
            audited = self.audited.get(type(obj))
            if audited is None or not session.is_modified(obj):
                continue
            changes = self._dirty_changes(session, obj, audited)
            if changes:
                staged.append(("update", obj, audited, changes, None, None, actor))
        for obj in list(session.new):
            audited = self.audited.get(type(obj))
            if audited is not None:
                staged.append(("create", obj, audited, None, None, None, actor))
        if _audit_objects(session, self.log):
            raise PermissionError("audit entries are append-only")

    def after_flush(self, session: Session, _ctx: Any) -> None:
        staged = session.info.pop(STAGED, [])
        if not staged:
            return
        pending = session.info.setdefault(PENDING, [])
        tag = _innermost(session)
        for action, obj, audited, changes, title, detail, actor in staged:
            if action == "create":
                changes = {
                    t.name: (None, self._current(session, obj, t, new=True))
                    for t in audited.fields
                }
            record_id = _pk(obj)
            diff = self._diff(session, audited, changes, record_id)
            if not diff and action == "update":
                continue
            title = title or self._title(obj, audited)
            if erasing(session, audited.entity, record_id):
                diff, title = erased_diff(diff), None  # an erasure logs no personal values
            if action == "update" and _merge(pending, tag, audited.entity, record_id, diff):
                continue
            pending.append(
                (tag, entry(actor, action, audited.entity, record_id, title, diff, detail))
            )

    def before_commit(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # written when the outermost transaction commits
        if session.new or session.deleted or session.dirty:
            session.flush()
        if session.info.get(BULK) or session.info.get(LINKS):
            self._drain_bulk(session)
        pending = session.info.pop(PENDING, None)
        if pending:
            chain.append(session.connection(), self.head, self.log, [e for _, e in pending])

    def after_soft_rollback(self, session: Session, previous: SessionTransaction) -> None:
        session.info.pop(STAGED, None)
        if session.info.get(BULK):
            session.info[BULK] = [i for i in session.info[BULK] if not _within(i[0], previous)]
        if session.info.get(LINKS):
            session.info[LINKS] = {k: v for k, v in session.info[LINKS].items()
                                   if not _within(v[0], previous)}
        pending = session.info.get(PENDING)
        if pending:
            session.info[PENDING] = [
                (tag, e) for tag, e in pending if not _within(tag, previous)
            ]

    def after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None and not transaction.nested:
            for key in (PENDING, STAGED, BULK, LINKS):
                session.info.pop(key, None)

    # -- statements run through the session (bulk INSERT/UPDATE/DELETE) ------

    def do_orm_execute(self, orm_state: Any) -> Any:
        """Capture INSERT/UPDATE/DELETE statements on entity and link tables.

        Imports and other bulk writers bypass the unit of work; their rows get the
        same entries (one per row) as ORM changes, written at commit.
        """
        if not (orm_state.is_insert or orm_state.is_update or orm_state.is_delete):
            return None
        if orm_state.execution_options.get(AUDITED):
            return None
        name = getattr(getattr(orm_state.statement, "table", None), "name", None)
        if name in self.entity_tables:
            return self._bulk_rows(orm_state, name)
        if name in self.link_tables:
            return self._bulk_links(orm_state, name)
        return None

    def _bulk_rows(self, orm_state: Any, entity: str) -> Any:
        session, stmt = orm_state.session, orm_state.statement
        table = self.entity_tables[entity]
        audited = self.audited[self.classes_by_entity[entity]]
        conn = session.connection()
        params = orm_state.parameters
        many = isinstance(params, list | tuple)
        param_sets = list(params) if many else [params or {}]
        actor, tag = acting_actor(), _innermost(session)
        bulk = session.info.setdefault(BULK, [])
        if orm_state.is_insert:
            rows = param_sets if (many or params) else [stmt.compile().params]
            result, ids = self._insert_with_ids(orm_state, conn, table, rows, many)
            for row, record_id in zip(rows, ids, strict=False):
                values = dict(row, id=record_id)
                changes = {t.name: (None, v) for t, v in self._row_values(audited, values)}
                bulk.append((tag, "create", audited, record_id, changes,
                             self._row_title(audited, values), actor))
            return result
        before: dict[Any, dict] = {}
        if stmt.whereclause is None and param_sets and all("id" in p for p in param_sets):
            # ORM bulk UPDATE by primary key: one parameter set per row, no WHERE.
            selects = [(sa.select(table).where(table.c.id.in_([p["id"] for p in param_sets])),
                        {})]
        else:
            where = stmt.whereclause if stmt.whereclause is not None else sa.true()
            selects = [(sa.select(table).where(where), p or {}) for p in param_sets]
        for select, p in selects:
            for row in conn.execute(select, p).mappings():
                before[row["id"]] = dict(row)
        result = orm_state.invoke_statement()
        if orm_state.is_delete:
            for record_id, row in before.items():
                changes = {t.name: (v, None) for t, v in self._row_values(audited, row)}
                bulk.append((tag, "delete", audited, record_id, changes,
                             self._row_title(audited, row), actor))
            return result
        after = {}
        if before:
            for row in conn.execute(sa.select(table).where(table.c.id.in_(list(before)))
                                    ).mappings():
                after[row["id"]] = dict(row)
        for record_id, old in before.items():
            new = after.get(record_id, old)
            old_values = dict(self._row_values(audited, old))
            changes = {t.name: (old_values[t], v) for t, v in self._row_values(audited, new)}
            bulk.append((tag, "update", audited, record_id, changes,
                         self._row_title(audited, new), actor))
        return result

    def _insert_with_ids(self, orm_state: Any, conn: Any, table: sa.Table, rows: list,
                         many: bool) -> tuple[Any, list[Any]]:
        stmt = orm_state.statement
        if rows and all(r.get("id") is not None for r in rows):
            return orm_state.invoke_statement(), [r["id"] for r in rows]
        if not many:
            result = orm_state.invoke_statement()
            key = result.inserted_primary_key if not stmt._returning else None
            if key is not None:
                return result, [key[0]]
        if stmt._returning:
            frozen = orm_state.invoke_statement().freeze()
            keys = list(frozen().keys())
            ids = [r[keys.index("id")] for r in frozen().all()] if "id" in keys else []
            return frozen(), ids
        if getattr(conn.dialect, "insert_executemany_returning_sort_by_parameter_order", False):
            returning = stmt.returning(table.c.id, sort_by_parameter_order=True)
            frozen = orm_state.invoke_statement(statement=returning).freeze()
            return frozen(), [r[0] for r in frozen().all()]
        return orm_state.invoke_statement(), [None] * len(rows)

    def _bulk_links(self, orm_state: Any, name: str) -> Any:
        """Note each owner's links before the first change; diff them at commit."""
        session, stmt = orm_state.session, orm_state.statement
        owner, field, assoc = self.link_tables[name]
        left, right = list(assoc.c)
        conn = session.connection()
        params = orm_state.parameters
        param_sets = list(params) if isinstance(params, list | tuple) else [params or {}]
        if orm_state.is_insert:
            owners = {p.get(left.name) for p in param_sets}
        else:
            where = stmt.whereclause if stmt.whereclause is not None else sa.true()
            owners = set()
            for p in param_sets:
                owners |= set(conn.execute(sa.select(left).where(where), p or {}).scalars())
        links = session.info.setdefault(LINKS, {})
        tag, actor = _innermost(session), acting_actor()
        for owner_id in owners - {None}:
            key = (owner, field, owner_id)
            if key not in links:
                current = conn.execute(sa.select(right).where(left == owner_id)).scalars().all()
                links[key] = (tag, sorted(current), actor)
        return None

    def _drain_bulk(self, session: Session) -> None:
        """Turn captured statements into entries (in the order they ran)."""
        pending = session.info.setdefault(PENDING, [])
        index = _latest(pending)  # a chunk of 1000 rows: no scan of the list per row
        with session.no_autoflush:
            for tag, action, audited, record_id, changes, title, actor in session.info.pop(
                    BULK, []):
                diff = self._diff(session, audited, changes, record_id)
                if erasing(session, audited.entity, record_id):
                    diff, title = erased_diff(diff), None
                if action == "update" and (not diff or _merge(
                        pending, tag, audited.entity, str(record_id), diff, index)):
                    continue
                new = entry(actor, action, audited.entity, record_id, title, diff, None)
                pending.append((tag, new))
                index[(new["entity"], new["record_id"])] = (tag, new)
            conn = session.connection()
            for (owner, field, owner_id), (tag, before, actor) in session.info.pop(
                    LINKS, {}).items():
                _, _, assoc = self.link_tables[f"{owner}_{field}"]
                left, right = list(assoc.c)
                after = sorted(conn.execute(sa.select(right).where(left == owner_id)).scalars())
                cls = self.classes_by_entity[owner]
                audited = self.audited[cls]
                target = self._target_class(cls, field)
                diff = self._diff(session, audited, {field: (
                    [_IdRef(i, target) for i in before], [_IdRef(i, target) for i in after])})
                if not diff or _merge(pending, tag, owner, str(owner_id), diff):
                    continue
                obj = session.get(cls, owner_id)
                title = self._title(obj, audited) if obj is not None else None
                pending.append((tag, entry(actor, "update", owner, owner_id, title, diff, None)))

    def _target_class(self, cls: type, field: str) -> type:
        return sa.inspect(cls).relationships[field].mapper.class_

    def _row_values(self, audited: Audited, row: dict) -> list[tuple[Tracked, Any]]:
        cls = self.classes_by_entity[audited.entity]
        result = []
        for t in audited.fields:
            if t.kind == "many":
                continue
            if t.kind == "ref":
                if t.column in row:
                    result.append((t, _IdRef(row[t.column], self._target_class(cls, t.name))))
            elif t.name in row:
                result.append((t, row[t.name]))
        return result

    def _row_title(self, audited: Audited, row: dict) -> str | None:
        spec = audited.spec
        if spec is None or not spec.title or not spec.has_field(spec.title):
            return None
        f = spec.field(spec.title)
        if f.encrypted or f.sensitive or f.is_relation or row.get(spec.title) is None:
            return f"{spec.label.en} #{row.get('id')}"
        return str(row[spec.title])

    # -- values ---------------------------------------------------------------

    def _dirty_changes(self, session: Session, obj: Any, audited: Audited) -> dict[str, Any]:
        insp = sa.inspect(obj)
        changes: dict[str, Any] = {}
        for t in audited.fields:
            if t.kind == "many":
                h = insp.attrs[t.name].history
                if h.added or h.deleted:
                    changes[t.name] = (list(h.unchanged) + list(h.deleted),
                                       list(h.unchanged) + list(h.added))
            elif t.kind == "ref":
                rel = insp.attrs[t.name].history
                col = insp.attrs[t.column].history
                if rel.added or rel.deleted:
                    new = rel.added[0] if rel.added else None
                    # Not synced yet: the column still holds the old id.
                    old = rel.deleted[0] if rel.deleted else _IdRef(
                        getattr(obj, t.column), self._target(obj, t))
                    changes[t.name] = (old, new)
                elif col.added or col.deleted:
                    target = self._target(obj, t)
                    changes[t.name] = (_IdRef(col.deleted[0] if col.deleted else None, target),
                                       _IdRef(col.added[0] if col.added else None, target))
            else:
                h = insp.attrs[t.name].history
                if h.added or h.deleted:
                    changes[t.name] = (h.deleted[0] if h.deleted else None,
                                       h.added[0] if h.added else None)
        return changes

    def _current(self, session: Session, obj: Any, t: Tracked, new: bool = False) -> Any:
        insp = sa.inspect(obj)
        if t.kind == "many":
            loaded = insp.attrs[t.name].loaded_value
            if loaded is sa.orm.base.NO_VALUE or loaded is None:
                return [] if new else list(getattr(obj, t.name))
            return list(loaded)
        if t.kind == "ref":
            loaded = insp.attrs[t.name].loaded_value
            if loaded is not sa.orm.base.NO_VALUE:
                return loaded
            return _IdRef(getattr(obj, t.column), self._target(obj, t))
        return getattr(obj, t.name)

    def _target(self, obj: Any, t: Tracked) -> type:
        return sa.inspect(type(obj)).relationships[t.name].mapper.class_

    def _diff(self, session: Session, audited: Audited, changes: dict[str, Any],
              record_id: Any = None) -> dict:
        diff: dict[str, Any] = {}
        fields = {t.name: t for t in audited.fields}
        # by name: hashing or comparing FieldSpec dataclasses field by field is slow
        sealed = {f.name for f in audited.spec.log_sealed_fields} \
            if audited.spec is not None else set()
        for name, (before, after) in changes.items():
            t = fields[name]
            spec = t.spec
            if spec is not None and spec.name in sealed:
                change = sealed_change(session, audited.entity, record_id, before, after)
                if change:
                    diff[name] = change
                continue
            if t.kind == "secret" or (spec is not None and spec.encrypted):
                if before != after:
                    diff[name] = {"changed": True, "encrypted": True}
                continue
            b, a = self._plain(session, t, before), self._plain(session, t, after)
            if b == a:
                continue
            if t.kind == "many" and len(b) + len(a) > LIST_LIMIT:
                # Long collections (a role's permissions): what was added and removed.
                diff[name] = {"added": [r for r in a if r not in b],
                              "removed": [r for r in b if r not in a],
                              "count_before": len(b), "count_after": len(a)}
                continue
            if spec is not None and spec.sensitive:
                b, a = logged_value(spec, b), logged_value(spec, a)
                diff[name] = {"before": b, "after": a, "masked": True}
            else:
                diff[name] = {"before": b, "after": a}
        return diff

    def _plain(self, session: Session, t: Tracked, value: Any) -> Any:
        if t.kind == "many":
            refs = [self._ref(session, v, t) for v in value or ()]
            return sorted(refs, key=lambda r: (r["id"] is None, r["id"] or 0, r["title"]))
        if t.kind == "ref":
            return None if value is None else self._ref(session, value, t)
        return plain(value)

    def _ref(self, session: Session, value: Any, t: Tracked) -> dict[str, Any] | None:
        if isinstance(value, _IdRef):
            if value.id is None:
                return None
            target = session.get(value.target, value.id)
            return {"id": value.id, "title": _limit(self._ref_title(target, t))}
        return {"id": _pk_int(value), "title": _limit(self._ref_title(value, t))}

    def _ref_title(self, value: Any, t: Tracked) -> str:
        if value is None:
            return ""
        audited = self.audited.get(type(value))
        if audited is not None:
            return self._title(value, audited)
        return str(getattr(value, t.title_attr) if t.title_attr else value)

    def _title(self, obj: Any, audited: Audited) -> str:
        if audited.title_attr:
            return str(getattr(obj, audited.title_attr, "") or "")
        spec = audited.spec
        if spec is not None and spec.title and spec.has_field(spec.title):
            f = spec.field(spec.title)
            if f.encrypted or f.sensitive:
                return f"{spec.label.en} #{_pk(obj)}"
        return str(obj)

    def _stage_cascades(self, session: Session, obj: Any, audited: Audited, staged: list,
                        actor: Actor, deleted_ids: set[int], seen: set[tuple[str, int]]) -> None:
        """Stage the rows the database cascades to when `obj` is deleted."""
        parent = {"entity": audited.entity, "id": _pk(obj)}
        for child_spec, f in self.cascades.get(audited.entity, ()):
            cls = self.classes_by_entity[child_spec.name]
            with session.no_autoflush:
                children = session.query(cls).filter(
                    getattr(cls, f.column_name) == _pk_int(obj)).all()
            child_audited = self.audited[cls]
            for child in children:
                key = (child_spec.name, _pk_int(child))
                if id(child) in deleted_ids or key in seen:
                    continue
                seen.add(key)
                if f.on_delete == "cascade":
                    values = {t.name: self._current(session, child, t)
                              for t in child_audited.fields}
                    staged.append(("delete", child, child_audited,
                                   {n: (v, None) for n, v in values.items()},
                                   self._title(child, child_audited), {"cascade_from": parent},
                                   actor))
                    self._stage_cascades(session, child, child_audited, staged, actor,
                                         deleted_ids, seen)
                else:
                    staged.append(("update", child, child_audited, {f.name: (obj, None)},
                                   None, {"cascade_from": parent}, actor))


@dataclass(frozen=True)
class _IdRef:
    """A related row known only by its id (the relation was set by column)."""

    id: Any
    target: type


def acting_actor() -> Actor:
    """Return the current actor; a CLI command without one is named as the CLI.

    `schemadesk user create ...` run from a shell has no signed-in user: the
    entry says `cli` and which OS account ran which command.
    """
    actor = current_actor()
    if actor.source == "system":
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            try:
                who = getpass.getuser()
            except Exception:  # noqa: BLE001 - no passwd entry in some containers
                who = "?"
            return Actor(None, f"{who}: {ctx.command_path}", "cli")
    return actor


def _entity_fields(entity: EntitySpec) -> list[Tracked]:
    result = []
    for f in entity.fields:
        if f.is_many:
            result.append(Tracked(f.name, "many", spec=f))
        elif f.is_foreign_key:
            result.append(Tracked(f.name, "ref", column=f.column_name, spec=f,
                                  title_attr="username" if f.type == "user" else None))
        else:
            result.append(Tracked(f.name, "scalar", spec=f))
    return result


def plain(value: Any) -> Any:
    """Return a JSON-safe form of a column value for a diff."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return _limit(str(value))


def _limit(text: str) -> str:
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"


def _pk(obj: Any) -> str | None:
    identity = sa.inspect(obj).identity
    if identity:
        return "-".join(str(v) for v in identity)
    value = getattr(obj, "id", None)
    return None if value is None else str(value)


def _pk_int(obj: Any) -> Any:
    identity = sa.inspect(obj).identity
    return identity[0] if identity and len(identity) == 1 else getattr(obj, "id", None)


def _latest(pending: list) -> dict[tuple[Any, Any], tuple[Any, dict]]:
    """The newest pending entry of each (entity, record id): `_merge`'s index."""
    return {(e["entity"], e["record_id"]): (tag, e) for tag, e in pending}


def _merge(pending: list, tag: Any, entity: str, record_id: str | None, diff: dict,
           index: dict | None = None) -> bool:
    """Fold an update into this transaction's entry for the same record, if any.

    A form save may flush a record more than once; the log shows one change.
    `index` (from `_latest`, kept up to date by the caller) replaces the scan.
    """
    if index is not None:
        hit = index.get((entity, record_id))
        candidates = [hit] if hit is not None else []
    else:
        candidates = reversed(pending)
    for other_tag, other in candidates:
        if other["entity"] != entity or other["record_id"] != record_id:
            continue
        if other_tag is not tag or other["action"] not in ("create", "update"):
            return False
        merged = json.loads(other["changes"]) if other["changes"] else {}
        for name, change in diff.items():
            old = merged.get(name)
            if old is None or "before" not in old or "before" not in change:
                merged[name] = change
            elif old["before"] == change["after"] and other["action"] == "update":
                del merged[name]
            else:
                merged[name] = dict(change, before=old["before"])
        other["changes"] = chain.dumps(merged)
        return True
    return False


def _innermost(session: Session) -> SessionTransaction | None:
    return session.get_nested_transaction() or session.get_transaction()


def _within(tag: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while tag is not None:
        if tag is ancestor:
            return True
        tag = tag.parent
    return False


def _audit_objects(session: Session, log: sa.Table) -> bool:
    """True when the flush would change or delete a mapped audit entry."""
    for obj in list(session.dirty) + list(session.deleted):
        mapper = sa.inspect(type(obj), raiseerr=False)
        if mapper is not None and getattr(mapper, "local_table", None) is log:
            return True
    return False


def entry(actor: Actor, action: str, entity: str | None, record_id: Any, title: str | None,
          changes: dict | None, detail: dict | None) -> dict[str, Any]:
    """Return the audit_log columns of a new entry (without id and hashes)."""
    return {
        "created_at": chain.utc_seconds(),
        "actor_id": actor.user_id,
        "actor_name": actor.name,
        "source": actor.source,
        "client_ip": actor.client_ip,
        "request_id": actor.request_id,
        "action": action,
        "entity": entity,
        "record_id": None if record_id is None else str(record_id),
        "record_title": title,
        "changes": _bounded(chain.dumps(changes)),
        "detail": _bounded(chain.dumps(detail)),
    }


def _bounded(text: str | None) -> str | None:
    """Keep stored JSON under MariaDB's TEXT limit (64 KB), shortening long values."""
    if text is None or len(text.encode("utf-8")) <= TEXT_LIMIT:
        return text
    doc = json.loads(text)
    short = {k: (v if len(json.dumps(v, ensure_ascii=False)) <= 200
                 else {"truncated": True, "summary": json.dumps(v, ensure_ascii=False)[:200]})
             for k, v in doc.items()} if isinstance(doc, dict) else {"truncated": True}
    result = chain.dumps(short) or ""
    if len(result.encode("utf-8")) > TEXT_LIMIT:
        result = chain.dumps({"truncated": True, "fields": sorted(short)[:500]}) or ""
    return result


def install(app: Any, st: Any, sm: Any) -> Capture:
    """Attach the audit listeners to the app's sessionmaker; return them."""
    from app.state import listen

    capture = Capture(app, st, sm)
    factory = st.db.session.session_factory
    listen(factory, "before_flush", capture.before_flush)
    listen(factory, "after_flush", capture.after_flush)
    listen(factory, "before_commit", capture.before_commit)
    listen(factory, "after_soft_rollback", capture.after_soft_rollback)
    listen(factory, "after_transaction_end", capture.after_transaction_end)
    listen(factory, "do_orm_execute", capture.do_orm_execute)
    app.extensions["schemadesk_audit"] = capture
    return capture


def uninstall(app: Any) -> None:
    """Detach the audit listeners of `app` (benchmarks measure writes without them)."""
    capture = app.extensions.pop("schemadesk_audit")
    for name in ("before_flush", "after_flush", "before_commit", "after_soft_rollback",
                 "after_transaction_end", "do_orm_execute"):
        event.remove(capture.factory, name, getattr(capture, name))
    app.extensions["schemadesk_audit_detached"] = capture


def capture_of_app() -> Capture:
    """Return the current app's Capture."""
    return current_app.extensions["schemadesk_audit"]


def record_event(
    action: str,
    entity: str | None = None,
    record_id: Any = None,
    title: str | None = None,
    detail: dict | None = None,
    session: Any = None,
    actor: Actor | None = None,
) -> None:
    """Append an event entry; see `app.audit.record_event` for the contract."""
    capture = capture_of_app()
    new = entry(actor or acting_actor(), action, entity, record_id, title, None, detail)
    if session is None:
        with capture.db.engine.begin() as conn:
            chain.append(conn, capture.head, capture.log, [new])
    elif isinstance(session, sa.engine.Connection):
        chain.append(session, capture.head, capture.log, [new])
    elif isinstance(session, capture.factory.class_):
        session.info.setdefault(PENDING, []).append((_innermost(session), new))
    else:  # a session of another factory: write now, in its transaction
        chain.append(session.connection(), capture.head, capture.log, [new])
