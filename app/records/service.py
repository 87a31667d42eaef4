"""The record service: the one policy path every way in goes through.

`records(entity)` answers, for the acting user and one entity:
- which rows (`select`, `query`, `get`, `row_clause`): grants and row rules;
- which fields and how shown (`show`, `present`, `may_search/sort/filter/group`):
  sensitive fields masked, and never searched, sorted, filtered or grouped by a
  user who may not see them in clear; encrypted fields never queried at all;
- what is valid (`validate`): the spec's validators, the same messages as the
  form and the importer;
- how a record is written (`create`, `update`, `save`, `delete`): defaults such
  as `$me` and the row rule's owner, the optimistic `version` check, a record
  the user could not see after saving refused, the workflow guard (the state
  field moves only by `transition`), the audit entry (written by the capture on
  the session, in the same transaction).

FAB views, the REST API, import, export, charts, KPIs, pickers and jobs are
adapters: they turn their request into these calls and the answer into a page,
JSON or a file.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from decimal import Decimal
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from app.i18n import N_, current_lang, gettext
from app.privacy import lookup
from app.records import rollups, workflow
from app.records.display import person_name
from app.records.masking import is_masked, mask_value, sees_sensitive
from app.records.scope import (
    ScopeCompiler,
    current_user_record,
    is_admin,
    role_spec_of,
    row_clause,
)
from app.records.validation import check_value
from app.schema.conditions import SYSTEM_FIELDS
from app.schema.spec import ACTIONS, EntitySpec, FieldSpec
from app.state import state

_CURRENT = object()
# Columns every entity has, in the order a reader expects them.
SYSTEM_READ = ("id", "created_at", "updated_at", "created_by", "updated_by")
WRITE_RETRIES = 10


class RecordError(Exception):
    """A refused read or write; `message` is translated, `status` the HTTP answer."""

    status = 400

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class NotFound(RecordError):
    status = 404


class Forbidden(RecordError):
    status = 403


class Invalid(RecordError):
    status = 422


class Conflict(RecordError):
    """The record changed since the writer read it (optimistic locking)."""

    status = 409


def records(entity_name: str, user: Any = _CURRENT) -> RecordService:
    """Return the record service of `entity_name` for `user` (default: who acts now).

    Within a web request the service of the acting user is made once per entity:
    a list page asks it for every masked cell.
    """
    if user is not _CURRENT or not has_request_context():
        return RecordService(entity_name, user)
    acting = current_user_record()
    cache = g.setdefault("_sd_records", {})
    key = (entity_name, getattr(acting, "id", None))
    if key not in cache:
        cache[key] = RecordService(entity_name, acting)
    return cache[key]


class RecordService:
    """Policy and persistence of one entity's records for one acting user."""

    def __init__(self, entity_name: str, user: Any = _CURRENT):
        st = state()
        self.spec = st.spec
        self.entity: EntitySpec = st.spec.entity(entity_name)
        self.model = st.models.model(entity_name)
        self.table = st.models.table(entity_name)
        self.session = st.db.session
        self.user = current_user_record() if user is _CURRENT else user

    # -- who may do what ------------------------------------------------------

    @cached_property
    def actions(self) -> frozenset[str]:
        """The actions the user may take on this entity (Admin and the CLI: all)."""
        if self.user is None:
            return frozenset() if has_request_context() else frozenset(ACTIONS)
        if is_admin(self.user):
            return frozenset(ACTIONS)
        found: set[str] = set()
        for role in self.user.roles or []:
            role_spec = role_spec_of(role)
            if role_spec is not None:
                found |= role_spec.actions_on(self.entity.name)
                continue
            found |= {
                pv.permission.name[4:]
                for pv in role.permissions
                if pv.view_menu and pv.view_menu.name == self.entity.name
                and pv.permission and pv.permission.name.startswith("can_")
            }
        return frozenset(found & set(ACTIONS))

    def can(self, action: str) -> bool:
        return action in self.actions

    def require(self, action: str) -> None:
        """Raise Forbidden unless the user may take `action` on this entity."""
        if not self.can(action):
            raise Forbidden(gettext(N_("You may not do this.")))

    @cached_property
    def sees_sensitive(self) -> bool:
        return sees_sensitive(self.user, self.entity.name)

    def row_clause(self, picker: bool = False) -> Any | None:
        """The criterion of the rows the user reaches, or None for every row."""
        return row_clause(self.entity.name, self.user, picker=picker)

    # -- fields -----------------------------------------------------------------

    def field(self, name: str) -> FieldSpec | None:
        """The field or system column called `name`, or None."""
        if self.entity.has_field(name):
            return self.entity.field(name)
        return SYSTEM_FIELDS.get(name)

    def _may_query(self, name: str, blind: bool = False) -> bool:
        """Whether `name` may be compared for this user; `blind`: by its blind index."""
        f = self.field(name.removesuffix("_id")) or self.field(name)
        if f is None or f.is_many:
            return False
        if self.entity.is_sealed(f.name) or f.encrypted:
            if not (blind and self.entity.is_blind(f.name)):
                return False
        return not f.sensitive or self.sees_sensitive

    def may_sort(self, name: str) -> bool:
        """Whether the list may be ordered by `name` for this user."""
        return self._may_query(name)

    def may_filter(self, name: str) -> bool:
        """Whether a filter on `name` may be applied for this user (sealed fields with a
        blind index: whole values only, see `is_blind`)."""
        f = self.field(name)
        if f is not None and f.is_many and not f.sensitive:
            return True
        return self._may_query(name, blind=True)

    def may_filter_column(self, name: str) -> bool:
        """Whether a filter comparing the stored column itself (FAB's filters) may run:
        never on a sealed field, whose column holds ciphertext."""
        return self.may_filter(name) and not self.entity.is_sealed(name)

    def is_blind(self, name: str) -> bool:
        """Whether `name` is compared by its blind index: equal whole values only."""
        return self.entity.is_blind(name)

    def equals_clause(self, f: FieldSpec, values: Any) -> Any:
        """The criterion "`f` is one of `values`", through the blind index where sealed."""
        if self.entity.is_blind(f.name):
            return lookup.equals(self.table, self.entity, f, values)
        column = self.table.c[f.column_name]
        return column.in_(values) if isinstance(values, list | tuple | set) else column == values

    def may_group(self, name: str) -> bool:
        """Whether a chart may group by `name` for this user."""
        return self._may_query(name)

    def searchable(self) -> list[FieldSpec]:
        """The `search` fields this user's search box looks in."""
        return [self.entity.field(n) for n in self.entity.search
                if self._may_query(n, blind=True)]

    def search_clause(self, text: str) -> Any | None:
        """The criterion of the free-text search box for `text`, or None.

        Text fields contain the text; sealed ones (a customer's phone) equal it whole.
        """
        text = (text or "").strip()
        fields = self.searchable()
        if not text or not fields:
            return None
        return sa.or_(*(lookup.equals(self.table, self.entity, f, text)
                        if self.entity.is_blind(f.name)
                        else _icontains(self.table.c[f.name], text) for f in fields))

    def show(self, f: FieldSpec, value: Any) -> Any:
        """Return `value` of field `f` as this user may see it (masked or clear)."""
        if f.sensitive and not self.sees_sensitive:
            return mask_value(f, value)
        return value

    # -- reading ----------------------------------------------------------------

    def scoped(self, stmt: Any, picker: bool = False) -> Any:
        """Return `stmt` (ORM Query or Select over this entity) narrowed to reachable rows."""
        clause = self.row_clause(picker=picker)
        if clause is None:
            return stmt
        return stmt.filter(clause) if hasattr(stmt, "filter") else stmt.where(clause)

    def eager_options(self) -> list[Any]:
        """Load options that fetch relations with the page's query (fixed statement count)."""
        options: list[Any] = []
        for f in self.entity.fields:
            attr = getattr(self.model, f.name)
            if f.is_many:
                options.append(selectinload(attr))
            elif f.is_foreign_key:
                options.append(joinedload(attr))
        return options

    def query(self) -> Any:
        """An ORM query over the reachable records, relations loaded with it."""
        self.require("read")
        return self.scoped(self.session.query(self.model)).options(*self.eager_options())

    def get(self, pk: Any, action: str = "read", lock: bool = False) -> Any:
        """Return the record `pk` if the user reaches it (and may `action`), else raise.

        `lock` reads it `FOR UPDATE` (fresh, and held until the transaction ends),
        so writers without an expected version queue up instead of colliding.
        """
        self.require(action)
        try:
            pk = int(pk)
        except (TypeError, ValueError):
            raise NotFound(gettext(N_("No such record."))) from None
        query = self.scoped(self.session.query(self.model).filter(self.model.id == pk))
        if lock:
            if self.session.get_bind().dialect.name == "sqlite":
                # SQLite has no FOR UPDATE: take the database's write lock now (a
                # write statement that touches nothing), so the read below is fresh.
                self.session.connection().exec_driver_sql(
                    f'UPDATE "{self.table.name}" SET id = id WHERE 0')
            query = query.with_for_update().populate_existing()
        obj = query.first()
        if obj is None:
            raise NotFound(gettext(N_("No such record.")))
        return obj

    def reachable_ids(self, ids: list[int], picker: bool = False) -> set[int]:
        """The subset of `ids` the user reaches."""
        if not ids:
            return set()
        stmt = self.scoped(sa.select(self.table.c.id).where(self.table.c.id.in_(ids)),
                           picker=picker)
        return set(self.session.execute(stmt).scalars())

    def present(self, obj: Any, reveal: bool | None = None) -> dict[str, Any]:
        """Return a record as JSON-ready values, sensitive fields masked for this user.

        `reveal` overrides the user's right for an outside receiver (a webhook says
        whether it may receive sensitive values in clear).
        """
        reveal = self.sees_sensitive if reveal is None else reveal
        out: dict[str, Any] = {"id": obj.id, "version": obj.version}
        for f in self.entity.fields:
            value = getattr(obj, f.name)
            if f.type == "user":
                out[f.name] = None if value is None else {"id": value.id,
                                                          "username": value.username}
            elif f.is_many:
                out[f.name] = [relation_json(self.spec.entity(f.to), v) for v in value]
            elif f.is_relation:
                out[f.name] = None if value is None else relation_json(
                    self.spec.entity(f.to), value)  # type: ignore[arg-type]
            else:
                shown = mask_value(f, value) if f.sensitive and not reveal else value
                out[f.name] = json_value(shown)
        for name in ("created_at", "updated_at"):
            out[name] = json_value(getattr(obj, name))
        for name in ("created_by", "updated_by"):  # the person, by name (never None text)
            who = getattr(obj, name, None)
            out[name] = None if who is None else {"id": who.id, "name": person_name(who)}
        return out

    # -- validating --------------------------------------------------------------

    def validate(self, values: dict[str, Any], obj: Any = None, partial: bool = False,
                 given: set[str] | None = None) -> dict[str, list[str]]:
        """Return {field: [messages]} for the values (parsed; relations as objects/ids).

        A new record (`obj` None or unsaved) must have its required fields unless
        `partial` (checking some values only).
        """
        errors: dict[str, list[str]] = {}
        for name, value in values.items():
            f = self.entity.field(name)
            if f.is_relation or f.type == "user":
                if f.required and value in (None, [], ""):
                    errors[name] = [gettext(N_("This field is required."))]
                continue
            reasons = check_value(f, value)
            if not reasons and f.unique and value not in (None, "") \
                    and (not f.encrypted or self.entity.is_blind(f.name)):
                reasons = self.unique_problem(f, value, obj)
            if reasons:
                errors[name] = reasons
        if not partial and (obj is None or getattr(obj, "id", None) is None):
            for f in self.entity.fields:
                if f.required and f.name not in (given or values) and f.default is None \
                        and not f.readonly:
                    errors.setdefault(f.name, [gettext(N_("This field is required."))])
        return errors

    def unique_problem(self, f: FieldSpec, value: Any, obj: Any) -> list[str]:
        stmt = sa.select(self.table.c.id).where(self.equals_clause(f, value))
        if obj is not None and getattr(obj, "id", None) is not None:
            stmt = stmt.where(self.table.c.id != obj.id)
        if self.session.execute(stmt.limit(1)).first() is None:
            return []
        lang = current_lang()
        return [gettext(N_("Another %(entity)s already has this %(field)s."),
                        entity=self.entity.label.get(lang), field=f.label.get(lang))]

    # -- writing -----------------------------------------------------------------

    def create(self, values: dict[str, Any]) -> Any:
        """Create a record from field values (relations as ids); return it."""
        self.require("create")
        obj = self.model()
        self._assign(obj, values)
        return self.save(obj, is_new=True, checked=True)

    def update(self, obj: Any, values: dict[str, Any], expected_version: int | None = None
               ) -> Any:
        """Change a reachable record; `expected_version` refuses a stale write."""
        self.require("update")
        for attempt in range(WRITE_RETRIES):
            if expected_version is not None and obj.version != expected_version:
                raise Conflict(conflict_message())
            self._assign(obj, values)
            try:
                return self.save(obj, is_new=False, checked=True)
            except Conflict:
                # Someone wrote between our read and our write. Without an
                # expected version the writer asked for last-write-wins: re-read.
                if expected_version is not None or attempt == WRITE_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
                obj = self.get(obj.id, "update", lock=True)
        return obj  # pragma: no cover - the loop returns or raises

    def save(self, obj: Any, is_new: bool, checked: bool = False,
             expected_version: int | None = None) -> Any:
        """Write `obj` (filled by a form or `_assign`) through the policy; commit; return it."""
        self.require("create" if is_new else "update")
        if expected_version is not None and not is_new and obj.version != expected_version:
            raise Conflict(conflict_message())
        if is_new:
            self._apply_defaults(obj)
            workflow.start(self.entity, obj)
        else:
            try:
                workflow.refuse_state_change(self, obj)
                workflow.refuse_while_approving(self, obj)
            except RecordError:
                self.session.rollback()
                raise
        if not checked:
            errors = self.validate(self._values_of(obj), obj)
            if errors:
                self.session.rollback()
                raise Invalid(first_message(errors), errors)
        if is_new:
            self.session.add(obj)
        return self.commit(obj)

    def commit(self, obj: Any, check_visible: bool = True) -> Any:
        """Flush `obj`, refuse it if the user could not see it after, commit; return it."""
        try:
            self.session.flush()
            if check_visible and not self.reachable_ids([obj.id]):
                raise Invalid(gettext(N_(
                    "You would not be able to see this record after saving it: it is outside "
                    "the records your role reaches. Choose a value you are responsible for.")))
            self.session.commit()
        except StaleDataError:
            self.session.rollback()
            raise Conflict(conflict_message()) from None
        except sa.exc.IntegrityError:
            self.session.rollback()
            raise Invalid(gettext(N_("The record could not be saved: it conflicts with "
                                     "another record or a required value is missing."))) from None
        except RecordError:
            self.session.rollback()
            raise
        return obj

    def transition(self, obj: Any, name: str, comment: str | None = None,
                   expected_version: int | None = None) -> Any:
        """Move a reachable record by workflow step `name` (see `app.records.workflow`)."""
        return workflow.take(self, obj, name, comment, expected_version)

    def transitions(self, obj: Any) -> list[Any]:
        """The workflow steps this user may take on `obj` from its current state."""
        return workflow.available(self, obj)

    def erase(self, obj: Any, rule: str | None = None) -> dict[str, Any]:
        """Erase a reachable data subject (delete or anonymise, destroy its key; app/privacy)."""
        from app.privacy.erase import erase_record

        return erase_record(self, obj, rule=rule)

    def delete(self, obj: Any) -> None:
        """Delete a reachable record (its audit entry is written in the same transaction)."""
        self.delete_many([obj])

    def delete_many(self, objs: list[Any]) -> int:
        """Delete several reachable records in one transaction; return how many."""
        self.require("delete")
        ids = self.reachable_ids([o.id for o in objs])
        if len(ids) != len({o.id for o in objs}):
            raise NotFound(gettext(N_("No such record.")))
        for obj in objs:
            self.session.delete(obj)
        workflow.forget_approvals(self, sorted(ids))
        try:
            self.session.commit()
        except sa.exc.IntegrityError:
            self.session.rollback()
            raise Invalid(gettext(N_(
                "This record cannot be deleted: other records still refer to it."))) from None
        return len(objs)

    # -- the pieces of a write ------------------------------------------------------

    def writable(self) -> list[FieldSpec]:
        return [f for f in self.entity.fields if not f.readonly]

    def clean_input(self, values: dict[str, Any]) -> dict[str, Any]:
        """Drop masked values sent back unchanged (the stored value stays)."""
        if self.sees_sensitive:
            return values
        return {k: v for k, v in values.items()
                if not (self.entity.has_field(k) and self.entity.field(k).sensitive
                        and is_masked(self.entity.field(k), v))}

    def _assign(self, obj: Any, values: dict[str, Any]) -> None:
        """Validate `values` and set them on `obj`; relations must be reachable ids."""
        refused = rollups.refuse_computed(self.entity, values)  # kept by the rules only
        if refused:
            self.session.rollback()
            raise Invalid(first_message(refused), refused)
        values = self.clean_input(values)
        plain = {k: v for k, v in values.items()
                 if not self.entity.field(k).is_relation and self.entity.field(k).type != "user"}
        errors = self.validate(plain, obj, given=set(values))
        related: dict[str, Any] = {}
        for name, value in values.items():
            f = self.entity.field(name)
            if f.is_relation or f.type == "user":
                try:
                    related[name] = self._related(f, value)
                except Invalid as exc:
                    errors[name] = [exc.message]
        if errors:
            self.session.rollback()
            raise Invalid(first_message(errors), errors)
        for name, value in plain.items():
            setattr(obj, name, value)
        for name, value in related.items():
            setattr(obj, name, value)

    def _related(self, f: FieldSpec, value: Any) -> Any:
        """Return the target object(s) of relation ids the user may pick."""
        if value in (None, "") or (f.is_many and value == []):
            if f.required:
                raise Invalid(gettext(N_("This field is required.")))
            return [] if f.is_many else None
        ids = value if f.is_many else [value]
        if not isinstance(ids, list | tuple) or any(
                isinstance(i, bool) or not isinstance(i, int) for i in ids):
            raise Invalid(gettext(N_("Not a valid record id.")))
        if f.type == "user":
            from flask_appbuilder.security.sqla.models import User

            found = self.session.query(User).filter(User.id.in_(ids)).all()
        else:
            target = RecordService(f.to, self.user)  # type: ignore[arg-type]
            reachable = target.reachable_ids(list(ids), picker=True)
            found = target.session.query(target.model).filter(
                target.model.id.in_(reachable)).all() if reachable else []
        if len(found) != len(set(ids)):
            raise Invalid(gettext(N_("No such record.")))
        return found if f.is_many else found[0]

    def _values_of(self, obj: Any) -> dict[str, Any]:
        """The field values of an object a form filled (relations as their objects)."""
        values = {}
        for f in self.entity.fields:
            value = getattr(obj, f.name)
            if value is None and f.is_foreign_key:
                value = getattr(obj, f.column_name, None)  # set by id, not loaded
            values[f.name] = value
        return values

    def _apply_defaults(self, obj: Any) -> None:
        """`$me`/`$user` defaults and the row rule's owner, where the writer gave none."""
        defaults = self.new_record_defaults()
        for f in self.entity.fields:
            if f.column_name not in defaults or getattr(obj, f.column_name, None) is not None \
                    or getattr(obj, f.name, None) is not None:
                continue
            # Set the relation itself: a form may have set it to None, which would
            # win over a bare foreign key at flush.
            if f.type == "user":
                from flask_appbuilder.security.sqla.models import User

                target = self.session.get(User, defaults[f.column_name])
            else:
                target = self.session.get(state().models.model(f.to), defaults[f.column_name])
            setattr(obj, f.name, target)

    def new_record_defaults(self) -> dict[str, Any]:
        """Column values a new record gets from `$me`/`$user` defaults and the owner rule.

        The importer writes rows in bulk and uses these; `_apply_defaults` is the
        same rule for one ORM object.
        """
        if self.user is None:
            return {}
        owners = self._owner_fields()
        out: dict[str, Any] = {}
        for f in self.entity.fields:
            if f.is_many:
                continue
            if f.default == "$user" or (f.type == "user" and f.name in owners):
                out[f.column_name] = self.user.id
            elif f.default == "$me" or f.name in owners:
                own = self.me_record_id(f)
                if own is not None:
                    out[f.column_name] = own
        return out

    def _owner_fields(self) -> set[str]:
        names: set[str] = set()
        for role in self.user.roles or []:
            role_spec = role_spec_of(role)
            rule = role_spec.row_rule(self.entity.name) if role_spec else None
            if rule is not None and rule.owner_field:
                names.add(rule.owner_field)
        return names

    def me_record_id(self, f: FieldSpec) -> int | None:
        """The id of the user's own record in the entity relation `f` points at."""
        if self.user is None or f.to is None:
            return None
        target = self.spec.entity(f.to)
        if target.user_field is None:
            return None
        table = state().models.table(target.name)
        return self.session.execute(
            sa.select(table.c.id).where(table.c[target.user_field.column_name] == self.user.id)
            .order_by(table.c.id).limit(1)).scalar()

    def me_ids_select(self) -> Any:
        """SELECT of the user's own `$me` record ids (for pickers and defaults)."""
        return ScopeCompiler(self.spec, self.user.id).me_ids()


def _icontains(column: Any, text: str) -> Any:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def relation_json(target: EntitySpec, obj: Any) -> dict[str, Any]:
    """A related record in JSON: its id and its title (never a sensitive title)."""
    out: dict[str, Any] = {"id": obj.id}
    if target.title and target.title != "id" and not target.field(target.title).sensitive:
        out[target.title] = json_value(getattr(obj, target.title))
    return out


def json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def first_message(errors: dict[str, list[str]]) -> str:
    for messages in errors.values():
        if messages:
            return messages[0]
    return gettext(N_("The record could not be saved."))


def conflict_message() -> str:
    return gettext(N_("Someone else changed this record since you opened it. Reload it to "
                      "see their change, then make yours again."))
