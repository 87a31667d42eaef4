"""Keep rollups (汇总字段) and classified enums (自动分级) right on every write.

Which writes: every change of a child record that reaches the database through
the app's session — the record service's create, update, delete and
delete_many (ORM flushes), workflow steps, the importer's and the demo's bulk
statements, bulk set-field — and rows the database deletes or empties by a
cascade. One mechanism, like the audit capture: session listeners note the
parents a write touches (`before_flush`/`after_flush` for ORM objects,
`do_orm_execute` for INSERT/UPDATE/DELETE statements), and just before the
transaction commits `settle` recomputes them with one correlated statement per
entity and set of parents:

    UPDATE customer SET total_spent = (SELECT coalesce(sum(amount), 0)
        FROM sales_order WHERE sales_order.customer_id = customer.id AND ...),
        order_count = (...), level = CASE WHEN ... END
    WHERE customer.id IN (...)

— in the same transaction as the write, so a rolled-back write leaves the
parents as they were, and an import chunk (one transaction) recomputes its
parents once. The recompute runs through the session, so the audit capture
records each parent whose value changed (an `update` entry of the writer, in
the same transaction): an auditor sees why a customer's level moved. Frappe
does not log rollups; we do, because a level that changes a discount or a
membership is a business fact someone will ask about. `updated_at` and the
optimistic `version` are left alone: nobody edited the parent, and an open
edit form of it must not become stale because an order was paid.

`rebuild` recomputes every record (existing data, a schema apply that adds a
rollup): `schemadesk rollups rebuild [ENTITY]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import replacement_traverse

from app.records.scope import ScopeCompiler, column_of
from app.schema.conditions import field_of
from app.schema.spec import AppSpec, EntitySpec, FieldSpec

TOUCHED = "rollups_touched"  # session.info: {entity: {ids}} to recompute at commit
FLUSHED = "rollups_flushed"  # session.info: ORM objects to read after the flush
LOCKED = "rollups_locked"  # session.info: {entity: {ids}} locked in this transaction
RULES = "sd_rules"  # execution option of our own statements (not captured again)
CHUNK = 500  # ids per IN (...)
MAX_ROUNDS = 50  # parents of parents of ...; only a deep tree gets near it


class Floor(FunctionElement):
    """FLOOR(x): points are whole; SQLite has no FLOOR, CAST truncates (x >= 0)."""

    inherit_cache = True
    type = sa.Integer()


@compiles(Floor)
def _floor(element: Any, compiler: Any, **kw: Any) -> str:
    return f"FLOOR({compiler.process(element.clauses, **kw)})"


@compiles(Floor, "sqlite")
def _floor_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


@dataclass(frozen=True)
class Link:
    """A rollup seen from its child: `child.via` points at a `parent` record."""

    parent: str
    child: str
    via: FieldSpec  # the child's relation field
    watched: frozenset[str]  # child attributes whose change moves the rollup


@dataclass
class Rules:
    """The rollups and classify rules of one spec, indexed for the listeners."""

    spec: AppSpec
    links: dict[str, list[Link]] = field(default_factory=dict)  # child -> links
    ruled: set[str] = field(default_factory=set)  # entities with rollups or classify
    referrers: dict[str, list[tuple[str, FieldSpec]]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # children before their parents
    # entity -> {column: expression} of its recompute (built once: building is slow)
    statements: dict[str, dict[str, Any]] = field(default_factory=dict)
    # entity -> computed values of a record with no children (None: they vary per row)
    new_records: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: AppSpec) -> Rules:
        rules = cls(spec)
        for entity in spec.entities:
            for f in entity.fields:
                if f.computed:
                    rules.ruled.add(entity.name)
                if f.rollup is None:
                    continue
                r = f.rollup
                child = spec.entity(r.child)
                via = child.field(r.via)
                watched = {r.via, via.column_name, r.field}
                if r.where is not None:
                    for path in r.where.fields():
                        hop = field_of(child, path[0])
                        watched |= {path[0], hop.column_name} if hop else {path[0]}
                link = Link(entity.name, child.name, via, frozenset(watched))
                if link not in rules.links.get(child.name, []):
                    rules.links.setdefault(child.name, []).append(link)
        for entity in spec.entities:  # rows a database cascade changes under a child
            if entity.name not in rules.links:
                continue
            for f in entity.fields:
                if f.is_foreign_key and f.type == "relation" and f.on_delete != "restrict":
                    rules.referrers.setdefault(f.to or "", []).append((entity.name, f))
        rules.order = _children_first(spec, rules.links)
        return rules

    @property
    def active(self) -> bool:
        return bool(self.ruled)


def _children_first(spec: AppSpec, links: dict[str, list[Link]]) -> list[str]:
    """Entity names, each child before the parents its rollups feed (cycles: as declared)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, trail: frozenset[str]) -> None:
        if name in seen or name in trail:
            return
        for other, child_links in links.items():
            if any(link.parent == name for link in child_links):
                visit(other, trail | {name})
        seen.add(name)
        order.append(name)

    for entity in spec.entities:
        visit(entity.name, frozenset())
    return order


# -- read-only ------------------------------------------------------------------


def computed_message() -> str:
    """The translated refusal of a write to a rollup or classified field."""
    from app.i18n import N_, gettext

    return gettext(N_("This value is calculated from other records by the schema's rules "
                      "and cannot be written."))


def refuse_computed(entity: EntitySpec, values: dict[str, Any]) -> dict[str, list[str]]:
    """{field: [message]} for every rollup or classified field among `values`."""
    return {name: [computed_message()] for name in values
            if entity.has_field(name) and entity.field(name).computed}


# -- the statements --------------------------------------------------------------


def rollup_expression(parent: EntitySpec, f: FieldSpec, tables: Any, spec: AppSpec) -> Any:
    """The correlated scalar SELECT of one rollup field of `parent`."""
    r = f.rollup
    assert r is not None
    parent_table = tables.table(parent.name)
    child = spec.entity(r.child)
    table = tables.table(child.name)
    if child.name == parent.name:  # a tree counting its own children
        table = table.alias("sd_child")
    via = table.c[child.field(r.via).column_name]
    source = field_of(child, r.field)
    assert source is not None
    column = table.c[column_of(tables.table(child.name), source).name]
    if r.agg == "count":
        agg = sa.func.count() if r.field == "id" else sa.func.count(column)
    else:
        agg = getattr(sa.func, r.agg)(column)
        if r.agg == "sum":
            agg = sa.func.coalesce(agg, 0)
    if r.multiply is not None:
        agg = agg * sa.literal(r.multiply, sa.Numeric(18, 6))
    if f.type == "integer" and r.agg != "count":
        agg = Floor(agg)
    elif f.type == "decimal" and (r.agg == "avg" or r.multiply is not None):
        agg = sa.func.round(agg, f.scale)
    stmt = sa.select(agg).where(via == parent_table.c.id)
    if r.where is not None:
        cond = ScopeCompiler(spec, 0).compile(child, r.where)
        if child.name == parent.name:
            plain = tables.table(child.name)
            cond = table.c.id.in_(sa.select(plain.c.id).where(cond).correlate(None))
        stmt = stmt.where(cond)
    return stmt.correlate(parent_table).scalar_subquery()


def classify_expression(entity: EntitySpec, f: FieldSpec, spec: AppSpec) -> Any:
    """CASE WHEN <rule> THEN <value> ... ELSE <default> END of a classified enum."""
    compiler = ScopeCompiler(spec, 0)
    whens = [(compiler.compile(entity, r.when), r.value) for r in f.classify if r.when]
    default = f.classify[-1].value
    if not whens:
        return sa.literal(default)
    return sa.case(*whens, else_=sa.literal(default))


def classify_order(entity: EntitySpec) -> list[FieldSpec]:
    """Classified fields, each after the classified fields its rules read."""
    pending = [f for f in entity.fields if f.classify]
    done: list[FieldSpec] = []
    while pending:
        for f in pending:
            reads = {p[0] for r in f.classify if r.when for p in r.when.fields()}
            if not any(o.name in reads for o in pending if o is not f):
                done.append(f)
                pending.remove(f)
                break
        else:  # a cycle: the schema check refuses it
            done += pending
            break
    return done


def recompute(session: Session, entity_name: str, ids: set[int] | None) -> None:
    """Recompute the rollups, then the classified enums, of `ids` (None: every record)."""
    from app.state import state

    table = state().models.table(entity_name)
    values = _statement_values(rules_of_app(), entity_name)
    parts = [None] if ids is None else [sorted(ids)[i:i + CHUNK]
                                        for i in range(0, len(ids), CHUNK)]
    for part in parts:
        if part is not None:
            lock_parents(session, {entity_name: set(part)})
        # version and updated_at stay (updated_at would take its ON UPDATE default):
        # nobody edited the record
        stmt = sa.update(table).values({**values, "updated_at": table.c.updated_at})
        if part is not None:
            stmt = stmt.where(table.c.id.in_(part))
        session.execute(stmt.execution_options(**{RULES: True}))


def new_values(entity: EntitySpec, table: sa.Table, tables: Any, spec: AppSpec
               ) -> dict[str, Any]:
    """{column: expression} of every rollup and classified field, for ONE UPDATE.

    A classify rule that reads a rollup (or another classified field) reads its
    new value: the column is replaced by the expression that computes it, since
    SQL evaluates every SET of a statement against the row as it was.
    """
    values: dict[str, Any] = {f.column_name: rollup_expression(entity, f, tables, spec)
                              for f in entity.fields if f.rollup is not None}

    def fresh(element: Any) -> Any:
        if isinstance(element, sa.Column) and element.table is table:
            return values.get(element.name)
        return None

    for f in classify_order(entity):
        values[f.column_name] = replacement_traverse(
            classify_expression(entity, f, spec), {}, fresh)
    return values


def before_bulk_insert(session: Session, entity_name: str, rows: list[dict[str, Any]]) -> bool:
    """Prepare rows about to be inserted in bulk; return whether their values are settled.

    Locks the parents the rows will point at (like any child write) and, when
    the entity's computed fields do not depend on a row's own fields, gives each
    row the values a new record has (`new_record_values`), so nothing is
    recomputed for it. The bulk writer runs its INSERT with the `RULES` option
    (the listeners leave it alone) and calls `after_bulk_insert` with the ids.
    """
    rules = rules_of_app()
    lock_parents(session, {link.parent: {r.get(link.via.column_name) for r in rows}
                           for link in rules.links.get(entity_name, [])})
    if entity_name not in rules.ruled:
        return True
    fixed = new_record_values(session, entity_name)
    if fixed is None:
        return False
    for row in rows:
        row.update(fixed)
    return True


def after_bulk_insert(session: Session, entity_name: str, rows: list[dict[str, Any]],
                      ids: list[int], settled: bool) -> None:
    """Settle rows just inserted in bulk: their own computed values now, parents at commit.

    Unless `before_bulk_insert` settled them, one SELECT per chunk computes the
    rows' rollups and classified fields and the rows that differ from what was
    inserted are updated. `rows` get the computed values, so the writer's
    `create` audit entries show them (as the capture folds a recompute into the
    entry). The parents the rows point at are recomputed once at commit.
    """
    rules = rules_of_app()
    if not settled and ids:
        _settle_new(session, entity_name, rows, ids, rules)
    touch(session, {link.parent: {r.get(link.via.column_name) for r in rows}
                    for link in rules.links.get(entity_name, [])})


def _statement_values(rules: Rules, entity_name: str) -> dict[str, Any]:
    from app.state import state

    values = rules.statements.get(entity_name)
    if values is None:
        st = state()
        values = rules.statements[entity_name] = new_values(
            st.spec.entity(entity_name), st.models.table(entity_name), st.models, st.spec)
    return values


def new_record_values(session: Session, entity_name: str) -> dict[str, Any] | None:
    """{column: value} of every computed field of a record with no children yet.

    None when a classify rule reads one of the record's own stored fields (then
    each new row needs its own computation). A rollup over no children is the
    empty aggregate (0 for count and sum, NULL otherwise); the classified fields
    are then constants, computed once by the database (`SELECT CASE ...`) so the
    comparison is SQL's, and cached with the rules.
    """
    from app.state import state

    rules = rules_of_app()
    if entity_name in rules.new_records:
        return rules.new_records[entity_name]
    st = state()
    entity, table = st.spec.entity(entity_name), st.models.table(entity_name)
    empty: dict[str, Any] = {}
    for f in entity.fields:
        if f.rollup is not None:
            zero = f.rollup.agg in ("count", "sum")
            column_type = table.c[f.column_name].type  # 0.00 for a decimal, as stored
            empty[f.column_name] = sa.cast(sa.literal(0), column_type) if zero \
                else sa.null()
    classified = classify_order(entity)
    fixed: dict[str, Any] | None = None
    if not _reads_stored_fields(entity, classified):
        def constant(element: Any) -> Any:
            if isinstance(element, sa.Column) and element.table is table:
                return empty.get(element.name)
            return None

        for f in classified:
            empty[f.column_name] = replacement_traverse(
                classify_expression(entity, f, st.spec), {}, constant)
        names = list(empty)
        row = session.connection().execute(
            sa.select(*(empty[n].label(n) for n in names))).one()
        fixed = dict(zip(names, row, strict=True))
    rules.new_records[entity_name] = fixed
    return fixed


def _reads_stored_fields(entity: EntitySpec, classified: list[FieldSpec]) -> bool:
    """Whether a classify rule reads anything but the entity's own computed fields."""
    for f in classified:
        for rule in f.classify:
            for path in rule.when.fields() if rule.when else ():
                hop = field_of(entity, path[0])
                if len(path) > 1 or hop is None or not hop.computed:
                    return True
    return False


def _settle_new(session: Session, entity_name: str, rows: list[dict[str, Any]],
                ids: list[int], rules: Rules) -> None:
    """Compute new rows' computed fields; update the rows whose inserted values differ."""
    from app.audit.capture import AUDITED  # the writer's create entries carry the values
    from app.state import state

    table = state().models.table(entity_name)
    values = _statement_values(rules, entity_name)
    columns = list(values)
    by_id = {record_id: row for record_id, row in zip(ids, rows, strict=True)}
    changed: dict[tuple[Any, ...], list[int]] = {}
    select = sa.select(table.c.id, *(expr.label(c) for c, expr in values.items()))
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        for found in session.connection().execute(select.where(table.c.id.in_(part))):
            row, computed = by_id[found[0]], tuple(found[1:])
            if any(row.get(c) != v for c, v in zip(columns, computed, strict=True)):
                changed.setdefault(computed, []).append(found[0])
            row.update(zip(columns, computed, strict=True))
    for computed, changed_ids in changed.items():
        for start in range(0, len(changed_ids), CHUNK):
            session.execute(
                sa.update(table).where(table.c.id.in_(changed_ids[start:start + CHUNK]))
                .values({**dict(zip(columns, computed, strict=True)),
                         "updated_at": table.c.updated_at}),
                execution_options={RULES: True, AUDITED: True})


def lock_parents(session: Session, found: dict[str, set[int]]) -> None:
    """Lock parent rows before their children are written (PostgreSQL, MariaDB).

    Two writers adding orders to one customer at once: the second waits here
    until the first commits, so its recompute (a new statement, a new snapshot
    under READ COMMITTED) sees the first one's order too — no lost update.
    Taken before the child write, not after it: the child's foreign key check
    already holds a share lock on the parent, and two share holders asking for
    the row lock would deadlock. PostgreSQL's FOR NO KEY UPDATE does not
    conflict with that key-share lock. Rows in id order, so writers queue.
    SQLite has one writer at a time and needs none of this.
    """
    from app.state import state

    if session.get_bind().dialect.name == "sqlite":
        return
    key_share = session.get_bind().dialect.name == "postgresql"
    held = session.info.setdefault(LOCKED, {})
    for name in sorted(found):
        ids = sorted(i for i in found[name] if i is not None
                     and i not in held.get(name, ()))  # held until the transaction ends
        held.setdefault(name, set()).update(ids)
        table = state().models.table(name)
        for i in range(0, len(ids), CHUNK):
            session.connection().execute(
                sa.select(table.c.id).where(table.c.id.in_(ids[i:i + CHUNK]))
                .order_by(table.c.id).with_for_update(key_share=key_share))


def parents_of(session: Session, rules: Rules, child: str, ids: set[int]
               ) -> dict[str, set[int]]:
    """{parent entity: ids} the child records `ids` point at now."""
    from app.state import state

    out: dict[str, set[int]] = {}
    links = rules.links.get(child, [])
    if not links or not ids:
        return out
    table = state().models.table(child)
    cols = [table.c[link.via.column_name] for link in links]
    for i in range(0, len(ids), CHUNK):
        part = sorted(ids)[i:i + CHUNK]
        for row in session.connection().execute(sa.select(*cols).where(table.c.id.in_(part))):
            for link, value in zip(links, row, strict=True):
                if value is not None:
                    out.setdefault(link.parent, set()).add(value)
    return out


def touch(session: Session, found: dict[str, set[int]]) -> None:
    """Note records to recompute when the transaction commits."""
    touched = session.info.setdefault(TOUCHED, {})
    for name, ids in found.items():
        ids = {i for i in ids if i is not None}
        if ids:
            touched.setdefault(name, set()).update(ids)


def settle(session: Session, rules: Rules) -> None:
    """Recompute everything the transaction touched, children before parents."""
    for _ in range(MAX_ROUNDS):
        touched = session.info.pop(TOUCHED, None)
        if not touched:
            return
        for name in rules.order:
            ids = touched.pop(name, None)
            if not ids:
                continue
            if name in rules.ruled:
                recompute(session, name, ids)
            for parent, parent_ids in parents_of(session, rules, name, ids).items():
                touched.setdefault(parent, set()).update(parent_ids)
        if touched:
            touch(session, touched)


def rebuild(session: Session, entity_name: str | None = None) -> list[str]:
    """Recompute every record of `entity_name` (None: of every ruled entity); commit.

    Returns the entities recomputed, children before parents.
    """
    from app.state import state

    rules = rules_of_app()
    names = [n for n in rules.order if n in rules.ruled
             and (entity_name is None or n == entity_name)]
    if entity_name is not None and entity_name not in rules.ruled:
        state().spec.entity(entity_name)  # KeyError for an unknown entity
    for name in names:
        recompute(session, name, None)
    session.commit()
    return names


# -- the listeners -----------------------------------------------------------------


class Keeper:
    """The session listeners of one app (see the module's docstring)."""

    def __init__(self, spec: AppSpec, models: Any):
        self.rules = Rules.of(spec)
        self.models = models
        self.by_class = {models.model(e.name): e.name for e in spec.entities}
        self.by_table = {e.name: e.name for e in spec.entities}

    # ORM flushes

    def before_flush(self, session: Session, _ctx: Any, _instances: Any) -> None:
        """Note the parents a flush leaves (old values: only known before it) and lock
        every parent it touches, before the children's SQL runs."""
        rules = self.rules
        later = session.info.setdefault(FLUSHED, [])
        found: dict[str, set[int]] = {}
        deleted: dict[str, list[Any]] = {}
        for obj in list(session.deleted):
            name = self.by_class.get(type(obj))
            if name is None:
                continue
            for link in rules.links.get(name, []):
                found.setdefault(link.parent, set()).add(_stored(obj, link.via.column_name))
            deleted.setdefault(name, []).append(obj.id)
        for name, ids in deleted.items():
            self._cascaded(session, name, ids, found)
        for obj in list(session.dirty):
            name = self.by_class.get(type(obj))
            if name is None or not session.is_modified(obj):
                continue
            if name in rules.ruled:
                later.append((name, obj))
            for link in rules.links.get(name, []):
                if _changed(obj, link.watched):
                    found.setdefault(link.parent, set()).add(_stored(obj, link.via.column_name))
                    later.append((name, obj))
        coming: dict[str, set[int]] = {}
        for obj in list(session.new):
            name = self.by_class.get(type(obj))
            if name is not None and (name in rules.ruled or name in rules.links):
                later.append((name, obj))
            for link in rules.links.get(name, []) if name else []:
                coming.setdefault(link.parent, set()).add(_target_id(obj, link.via))
        for name, obj in later:  # a child moved to another parent
            for link in rules.links.get(name, []):
                coming.setdefault(link.parent, set()).add(_target_id(obj, link.via))
        lock_parents(session, {n: found.get(n, set()) | coming.get(n, set())
                               for n in set(found) | set(coming)})
        touch(session, found)

    def after_flush(self, session: Session, _ctx: Any) -> None:
        """Note new and moved children's parents, and ruled records (ids known now)."""
        later = session.info.pop(FLUSHED, [])
        found: dict[str, set[int]] = {}
        for name, obj in later:
            if obj.id is None:
                continue
            if name in self.rules.ruled:
                found.setdefault(name, set()).add(obj.id)
            for link in self.rules.links.get(name, []):
                found.setdefault(link.parent, set()).add(getattr(obj, link.via.column_name))
        touch(session, found)

    def _cascaded(self, session: Session, name: str, ids: list[Any],
                  found: dict[str, set[int]]) -> None:
        """Parents of child rows the database deletes or empties when `ids` of `name` go."""
        ids = [i for i in ids if i is not None]
        for child, f in self.rules.referrers.get(name, []) if ids else []:
            table = self.models.table(child)
            rows = session.connection().execute(
                sa.select(table.c.id).where(table.c[f.column_name].in_(ids))).scalars().all()
            for parent, parent_ids in parents_of(session, self.rules, child, set(rows)).items():
                found.setdefault(parent, set()).update(parent_ids)

    # statements (bulk INSERT/UPDATE/DELETE through the session)

    def do_orm_execute(self, orm_state: Any) -> Any:
        """Run a bulk INSERT/UPDATE/DELETE on a ruled or child table, noting the rows
        and parents it touches (read before and after it)."""
        if not (orm_state.is_insert or orm_state.is_update or orm_state.is_delete):
            return None
        if orm_state.execution_options.get(RULES):
            return None
        name = self.by_table.get(getattr(getattr(orm_state.statement, "table", None),
                                         "name", None))
        rules = self.rules
        if name is None or not (name in rules.ruled or name in rules.links
                                or name in rules.referrers):
            return None
        session = orm_state.session
        table = self.models.table(name)
        conn = session.connection()
        if orm_state.is_insert:
            last = conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0
            params = orm_state.parameters
            param_sets = params if isinstance(params, list | tuple) else [params or {}]
            lock_parents(session, {link.parent: {p.get(link.via.column_name)
                                                 for p in param_sets}
                                   for link in rules.links.get(name, [])})
            result = orm_state.invoke_statement()
            given = [p.get("id") for p in param_sets]
            ids = set(conn.execute(sa.select(table.c.id).where(table.c.id > last)).scalars())
            ids |= {i for i in given if i is not None}
            self._touch_rows(session, name, ids)
            return result
        ids = self._matching_ids(orm_state, conn, table)
        found = {name: set(ids)} if name in rules.ruled and orm_state.is_update else {}
        for parent, parent_ids in parents_of(session, rules, name, ids).items():
            found.setdefault(parent, set()).update(parent_ids)
        if orm_state.is_delete:
            self._cascaded(session, name, list(ids), found)
        lock_parents(session, {n: v for n, v in found.items() if n != name})
        result = orm_state.invoke_statement()
        touch(session, found)
        if orm_state.is_update:
            touch(session, parents_of(session, rules, name, ids))
        return result

    def _touch_rows(self, session: Session, name: str, ids: set[int]) -> None:
        found = {name: set(ids)} if name in self.rules.ruled else {}
        for parent, parent_ids in parents_of(session, self.rules, name, ids).items():
            found.setdefault(parent, set()).update(parent_ids)
        touch(session, found)

    @staticmethod
    def _matching_ids(orm_state: Any, conn: Any, table: sa.Table) -> set[int]:
        """Ids of the rows an UPDATE/DELETE statement is about to change."""
        stmt, params = orm_state.statement, orm_state.parameters
        param_sets = list(params) if isinstance(params, list | tuple) else [params or {}]
        if stmt.whereclause is None and param_sets and all("id" in p for p in param_sets):
            return {p["id"] for p in param_sets}  # ORM bulk UPDATE by primary key
        key = _id_parameter(stmt.whereclause, table)
        if key is not None and all(key in p for p in param_sets):
            return {p[key] for p in param_sets}  # WHERE id = :x, one set per row (imports)
        where = stmt.whereclause if stmt.whereclause is not None else sa.true()
        ids: set[int] = set()
        for p in param_sets:
            ids |= set(conn.execute(sa.select(table.c.id).where(where), p or {}).scalars())
        return ids

    # the transaction

    def before_commit(self, session: Session) -> None:
        """Recompute what the transaction touched, inside it (before the audit writes)."""
        if session.in_nested_transaction():
            return
        if session.new or session.deleted or session.dirty:
            session.flush()
        if session.info.get(TOUCHED):
            settle(session, self.rules)

    def forget(self, session: Session, *_args: Any) -> None:
        for key in (TOUCHED, FLUSHED, LOCKED):
            session.info.pop(key, None)


def _target_id(obj: Any, via: FieldSpec) -> Any:
    """The id of the record a child's relation points at now (set by id or by object)."""
    added = sa.inspect(obj).attrs[via.name].history.added  # set by object, not loaded
    if added:
        return getattr(added[0], "id", None)
    return getattr(obj, via.column_name, None)


def _id_parameter(where: Any, table: sa.Table) -> str | None:
    """The parameter name of `WHERE <table>.id = :name`, or None for any other criterion."""
    if not isinstance(where, BinaryExpression) or where.operator is not operators.eq:
        return None
    if where.left is table.c.id and isinstance(where.right, BindParameter):
        return where.right.key
    return None


def _stored(obj: Any, column: str) -> Any:
    """The value of `column` as the database holds it (before this flush)."""
    history = sa.inspect(obj).attrs[column].history
    if history.deleted:
        return history.deleted[0]
    if history.unchanged:
        return history.unchanged[0]
    return getattr(obj, column, None) if not history.added else None


def _changed(obj: Any, names: frozenset[str]) -> bool:
    attrs = sa.inspect(obj).attrs
    return any(n in attrs and attrs[n].history.has_changes() for n in names)


def install(app: Any, st: Any) -> Keeper | None:
    """Attach the listeners to the app's sessionmaker (nothing for a spec without rules).

    They go first: a bulk statement's parents are recomputed after the audit
    capture has seen the statement, and `settle` runs before the capture writes
    the transaction's entries (which then include the recomputed parents).
    """
    from app.state import listen

    keeper = Keeper(st.spec, st.models)
    app.extensions["schemadesk_rollups"] = keeper
    if not keeper.rules.active:
        return keeper
    factory = st.db.session.session_factory
    listen(factory, "before_flush", keeper.before_flush)
    listen(factory, "after_flush", keeper.after_flush)
    listen(factory, "do_orm_execute", keeper.do_orm_execute, insert=True)
    listen(factory, "before_commit", keeper.before_commit, insert=True)
    listen(factory, "after_soft_rollback", keeper.forget)
    listen(factory, "after_transaction_end",
                 lambda s, t: keeper.forget(s) if t.parent is None and not t.nested else None)
    return keeper


def init_rollups(app: Any, _appbuilder: Any) -> None:
    """Service hook (app/hooks.py): keep the rules of this app's spec."""
    from app.state import state

    install(app, state())


def rules_of_app() -> Rules:
    """The rules of the running app."""
    from flask import current_app

    keeper = current_app.extensions.get("schemadesk_rollups")
    if keeper is None:
        from app.state import state

        return Rules.of(state().spec)
    return keeper.rules


# -- the command -------------------------------------------------------------------


def _cli() -> Any:
    import click
    from flask.cli import AppGroup

    from app.context import Actor, acting_as
    from app.i18n import N_, gettext

    group = AppGroup("rollups", help="Rollups and classified fields (rules that keep data).")

    @group.command("rebuild")
    @click.argument("entity", required=False)
    def rebuild_command(entity: str | None) -> None:
        """Recompute every rollup and classified field (of ENTITY, or of all)."""
        from app.state import state

        if entity is not None and not state().spec.has_entity(entity):
            raise click.UsageError(gettext(N_("'%(name)s' is not an entity."), name=entity))
        with acting_as(Actor(None, "rollups rebuild", "cli")):
            names = rebuild(state().db.session, entity)
        if not names:
            click.echo(gettext(N_("No rollups or classified fields to recompute.")))
        for name in names:
            click.echo(gettext(N_("Recomputed %(entity)s."), entity=name))

    return group


rollups_cli = _cli()
