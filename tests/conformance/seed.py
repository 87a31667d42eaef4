"""Seed any schema through the ORM: accounts per role, a tree, records owned by each.

Nothing here goes through `app.records`: records are plain ORM objects, so the
seeding does not depend on the code under test. Every account owns one record
of every entity (its relations point at the account's own records, its user
fields at the account), a "nobody" record per entity leaves every optional
relation empty, and where the schema has a tree (`parent` to itself) the `$me`
records sit in different nodes of root -> child -> grandchild (plus a separate
root, so "under the root" is not "everything").
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask import Flask

from app.schema.spec import AppSpec, EntitySpec, FieldSpec
from app.state import state
from tests.conformance.oracle import ADMIN, Account, Rows

PASSWORD = "Conf0rmance-Pass-2024!"
ACCOUNTS_PER_ROLE = 2
NOBODY = 0  # the owner key of records that belong to no account


@dataclass
class Seeded:
    accounts: list[Account]
    rows: Rows
    owned: dict[tuple[int, str], int]  # (account id or NOBODY, entity) -> record id
    tree: list[int] = field(default_factory=list)  # root, grandchild, child, other root


class Seeder:
    def __init__(self, app: Flask, spec: AppSpec, prefix: str):
        self.app = app
        self.spec = spec
        self.prefix = prefix
        self.counter = itertools.count(1)
        self.owned: dict[tuple[int, str], int] = {}
        self.node_of: dict[int, int] = {}
        self.tree: list[int] = []
        self.tree_entity = next((e for e in spec.entities if e.tree_field is not None), None)

    # -- values ---------------------------------------------------------------

    def unique(self) -> int:
        return next(self.counter)

    def value_for(self, f: FieldSpec, n: int) -> Any:
        """A valid, recognisable value; sensitive ones unique (139 + 8 digits, SEC...)."""
        if f.type == "enum":
            return f.choices[n % len(f.choices)].key
        if f.type == "integer":
            low = int(f.min) if f.min is not None else 1
            high = int(f.max) if f.max is not None else low + 100
            return low + n % max(1, high - low + 1)
        if f.type == "decimal":
            low = Decimal(f.min) if f.min is not None else Decimal(0)
            return low + Decimal(n % 90 + 10)
        if f.type == "boolean":
            return n % 2 == 0
        if f.type == "date":
            return dt.date(2024, 1, 1) + dt.timedelta(days=n % 300)
        if f.type == "datetime":
            return dt.datetime(2024, 1, 1, 9, 30) + dt.timedelta(days=n % 300)
        if f.type == "phone":
            # scrambled, so that an order by phone is not the order of creation
            return f"139{(n * 2654435761) % 10**8:08d}" if f.sensitive else f"021{66000000 + n:08d}"
        if f.type == "email":
            return f"{'sec' if f.sensitive else 'm'}{n:05d}@{self.prefix}.example.com"
        if f.type == "url":
            return f"https://site{n}.example.com/"
        length = f.max_length or f.length or 200
        if f.sensitive:
            # at least 12 characters so the mask keeps 4+4 and hides the middle
            return f"SEC{880000000000 + (n * 2654435761) % 10**6}"[:length]
        return f"{f.name[:3]}{self.prefix}{n:04d}"[:length]

    # -- accounts ---------------------------------------------------------------

    def accounts(self) -> list[Account]:
        found = []
        with self.app.app_context():
            sm = self.app.appbuilder.sm
            for role in [*(r.name for r in self.spec.roles), ADMIN]:
                count = 1 if role == ADMIN else ACCOUNTS_PER_ROLE
                for i in range(count):
                    name = f"{self.prefix}_{role}_{i}".lower()
                    user = sm.add_user(name, name, "Conf", f"{name}@example.com",
                                       sm.find_role(role), password=PASSWORD)
                    assert user, f"could not create {name}"
                    found.append(Account(user.id, name, (role,)))
        return found

    # -- records ----------------------------------------------------------------

    def build_tree(self, accounts: list[Account]) -> None:
        if self.tree_entity is None:
            return
        e = self.tree_entity
        session = state().db.session
        model = state().models.model(e.name)

        def node(parent: int | None) -> int:
            obj = model()
            self.fill(obj, e, None)
            setattr(obj, e.tree_field.column_name, parent)  # type: ignore[union-attr]
            session.add(obj)
            session.flush()
            return obj.id

        root = node(None)
        child = node(root)
        grandchild = node(child)
        other = node(None)
        self.tree = [root, grandchild, child, other]
        for i, account in enumerate(accounts):
            self.node_of[account.user_id] = self.tree[i % len(self.tree)]

    def fill(self, obj: Any, e: EntitySpec, owner: int | None) -> None:
        """Set every plain field (owned records) or only the required ones (nobody)."""
        for f in e.fields:
            if f.is_relation or f.type == "user":
                continue
            if owner is not None or f.required or f.sensitive:
                setattr(obj, f.name, self.value_for(f, self.unique()))

    def own(self, owner: int, entity: str, building: frozenset[str] = frozenset()) -> int | None:
        """The record of `entity` that `owner` (an account id, or NOBODY) owns; made once."""
        key = (owner, entity)
        if key in self.owned:
            return self.owned[key]
        e = self.spec.entity(entity)
        if self.tree_entity is not None and entity == self.tree_entity.name:
            return self.node_of.get(owner)
        if entity in building:
            return None
        st = state()
        obj = st.models.model(entity)()
        account = owner if owner != NOBODY else None
        self.fill(obj, e, account)
        for f in e.fields:
            if f.type == "user":
                setattr(obj, f.column_name, account)
            elif f.is_many:
                if account is not None:
                    target = self.own(owner, f.to, building | {entity})  # type: ignore[arg-type]
                    if target is not None:
                        getattr(obj, f.name).append(
                            st.db.session.get(st.models.model(f.to), target))  # type: ignore
            elif f.is_relation and f.to != entity and (account is not None or f.required):
                target = self.own(owner, f.to, building | {entity})  # type: ignore[arg-type]
                if target is None and f.required and self.tree:
                    target = self.tree[0]
                setattr(obj, f.column_name, target)
        st.db.session.add(obj)
        st.db.session.flush()
        self.owned[key] = obj.id
        return obj.id

    def run(self) -> Seeded:
        accounts = self.accounts()
        with self.app.app_context():
            self.build_tree(accounts)
            for owner in [*(a.user_id for a in accounts), NOBODY]:
                for e in self.spec.entities:
                    self.own(owner, e.name)
            state().db.session.commit()
            rows = load_rows(self.spec)
        return Seeded(accounts, rows, dict(self.owned), list(self.tree))


def load_rows(spec: AppSpec) -> Rows:
    """Every row of every entity as a dict (decrypted, relations as ids)."""
    st = state()
    rows = Rows()
    for e in spec.entities:
        model = st.models.model(e.name)
        out: dict[int, dict[str, Any]] = {}
        for obj in st.db.session.query(model).all():
            row: dict[str, Any] = {"id": obj.id}
            for f in e.fields:
                if f.is_many:
                    row[f.name] = frozenset(t.id for t in getattr(obj, f.name))
                elif f.is_foreign_key:
                    row[f.name] = getattr(obj, f.column_name)
                else:
                    row[f.name] = getattr(obj, f.name)
            for name in ("created_by", "updated_by"):
                row[name] = getattr(obj, f"{name}_id", None)
            for name in ("created_at", "updated_at"):
                row[name] = getattr(obj, name, None)
            out[obj.id] = row
        rows.by_entity[e.name] = out
    st.db.session.rollback()
    return rows
