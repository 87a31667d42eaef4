"""`schemadesk demo seed`: believable demo rows for any schema, with Faker (zh_CN/en_US)."""

from __future__ import annotations

import datetime as dt
import random
import secrets
import string
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from app.i18n import N_, gettext
from app.models import utcnow
from app.records.display import local_to_utc, local_today
from app.schema.spec import AppSpec, EntitySpec, FieldSpec, RoleSpec


def entity_order(spec: AppSpec) -> list[EntitySpec]:
    """Return the entities with relation targets before the entities that point at them."""
    done: list[EntitySpec] = []
    pending = list(spec.entities)
    while pending:
        for entity in list(pending):
            targets = {f.to for f in entity.fields if f.is_relation and f.to != entity.name}
            if targets <= {e.name for e in done}:
                done.append(entity)
                pending.remove(entity)
                break
        else:  # a cycle: required relations cannot all be met; take the rest as they are
            done += pending
            break
    return done


class DemoValues:
    """Field values for demo rows: Faker in the schema's language, within the field's rules."""

    def __init__(self, locale: str, seed: int | None = None):
        from faker import Faker

        self.fake = Faker(["zh_CN", "en_US"] if locale == "zh" else ["en_US", "zh_CN"])
        self.zh = Faker("zh_CN") if locale == "zh" else Faker("en_US")
        self.random = random.Random(seed)
        if seed is not None:
            Faker.seed(seed)

    def value(self, entity: EntitySpec, f: FieldSpec, index: int) -> Any:
        name, fake, rnd = f.name.lower(), self.zh, self.random
        if f.type == "enum":
            # A state held only while an approval is open needs its request: not in demo rows.
            held = (
                entity.workflow.pending_states
                if entity.workflow is not None and entity.workflow.field == f.name
                else frozenset()
            )
            choices = [c for c in f.choices if c.key not in held]
            return rnd.choice(choices).key if choices else None
        if f.type == "boolean":
            return rnd.random() < 0.5
        if f.type == "integer":
            low = int(f.min) if f.min is not None else 0
            high = int(f.max) if f.max is not None else max(low + 100, 100)
            return rnd.randint(low, high)
        if f.type == "decimal":
            low = float(f.min) if f.min is not None else 0.0
            high = (
                float(f.max)
                if f.max is not None
                else min(10 ** (f.precision - f.scale) - 1, 100000.0)
            )
            return Decimal(str(round(rnd.uniform(low, high), f.scale)))
        if f.type == "date":
            return self.date(name)
        if f.type == "datetime":
            return self.past_time(days=90)
        if f.type == "email":
            return f"{fake.user_name()}{index}@{fake.free_email_domain()}"
        if f.type == "phone":
            return f"1{rnd.choice('3589')}{index:09d}"[:11] if f.unique else fake.phone_number()
        if f.type == "url":
            return fake.url()
        if f.type == "text":
            return fake.paragraph(nb_sentences=2) if "address" not in name else fake.address()
        if f.pattern:
            return None
        text = self._string(entity, f, index)
        if f.unique:
            text = f"{text}-{index}"
        return text[: f.length or 255]

    def date(self, name: str) -> dt.date:
        """A date around today: birthdays decades back; due dates mostly in the coming
        weeks, a few in the last two (overdue, never years)."""
        today = local_today()
        if "birth" in name:
            return today - dt.timedelta(days=self.random.randint(18 * 365, 70 * 365))
        return today + dt.timedelta(days=self.random.randint(-14, 28))

    def past_time(self, days: int) -> dt.datetime:
        """A UTC time within the last `days` days, during office hours in the app zone."""
        day = local_today() - dt.timedelta(days=self.random.randint(0, days))
        local = dt.datetime.combine(
            day, dt.time(self.random.randint(8, 18), self.random.choice((0, 15, 30, 45)))
        )
        return min(local_to_utc(local), utcnow().replace(microsecond=0))

    def _string(self, entity: EntitySpec, f: FieldSpec, index: int) -> str:
        name, fake = f.name.lower(), self.zh
        if name.endswith(("_no", "no", "sku", "code")) or name in ("sku", "isbn"):
            return f"{entity.name[:3].upper()}{index:06d}"
        if name in ("name", "full_name") and entity.name in ("customer", "company", "supplier"):
            return fake.company()
        if (
            name == "name"
            and len(entity.fields) <= 3
            and not any(f.is_foreign_key for f in entity.fields)
        ):
            return fake.word()  # a lookup (tag, category): a word, not a person
        if "name" in name or name in ("author", "contact"):
            return fake.name()
        if "position" in name or "job" in name:
            return fake.job()
        if "address" in name:
            return fake.address()
        if "city" in name:
            return fake.city()
        if "title" in name:
            return fake.sentence(nb_words=4).rstrip(".。")
        return fake.word()


@dataclass
class DemoLogin:
    """A demo login for one YAML role, and the records that make it someone ($me, owner)."""

    username: str
    role: RoleSpec
    user_id: int
    name: str
    records: dict[str, int] = field(default_factory=dict)  # entity -> its linked record


def owner_fields(role: RoleSpec, spec: AppSpec) -> list[tuple[EntitySpec, FieldSpec]]:
    """The (entity, field) pairs a role's `{field: $user|$me}` row rules make it own."""
    found = []
    for rule in role.rows:
        if rule.owner_field and spec.has_entity(rule.entity):
            entity = spec.entity(rule.entity)
            if entity.has_field(rule.owner_field):
                found.append((entity, entity.field(rule.owner_field)))
    return found


def linked_entities(role: RoleSpec, spec: AppSpec) -> set[str]:
    """Entities in which a login of `role` needs a record of its own (user field = it)."""
    needs = {spec.me_entity} if spec.me_entity else set()
    for entity, f in owner_fields(role, spec):
        if f.type == "user":
            needs.add(entity.name)
        elif f.is_relation and spec.entity(f.to or "").user_field is not None:  # type: ignore[arg-type]
            needs.add(f.to)  # type: ignore[arg-type]
    return needs


def make_logins(spec: AppSpec, values: DemoValues, password: str) -> list[DemoLogin]:
    """A login per role (two for roles with an "own records" rule), all with `password`."""
    from flask import current_app

    sm = current_app.appbuilder.sm
    logins = []
    for role in spec.roles:
        fab_role = sm.find_role(role.name)
        if fab_role is None:
            continue
        for i in range(1, 3 if owner_fields(role, spec) else 2):
            username = f"{role.name}{i}"
            name = values.zh.name()
            user = sm.find_user(username=username)
            if user is None:
                user = sm.add_user(
                    username, name, "", f"{username}@demo.example", fab_role, password=password
                )
            else:
                sm.reset_password(user.id, password)
            if user:
                logins.append(
                    DemoLogin(
                        username, role, user.id, f"{user.first_name} {user.last_name}".strip()
                    )
                )
    return logins


def _link_rows(
    entity: EntitySpec,
    logins: list[DemoLogin],
    spec: AppSpec,
    values: DemoValues,
    ids: dict[str, list[int]],
    index: int,
) -> list[tuple[DemoLogin, dict[str, Any]]]:
    """Rows of `entity` that make each login someone there (its user field set to it)."""
    rows = []
    user_field = entity.user_field
    if user_field is None:
        return rows
    for login in logins:
        if entity.name not in linked_entities(login.role, spec):
            continue
        index += 1
        row: dict[str, Any] = {}
        for f in entity.fields:
            if f.is_many:
                continue
            if f.type == "user":
                row[f.column_name] = login.user_id if f is user_field else None
            elif f.is_relation:
                targets = sorted(ids.get(f.to or "") or [])
                row[f.column_name] = targets[0] if targets else None  # all in one department
            elif f.name == entity.title:
                row[f.column_name] = login.name[: f.length or 255]
            elif f.type == "boolean" and f.default is not None:
                row[f.column_name] = f.default
            else:
                row[f.column_name] = values.value(entity, f, index)
        rows.append((login, row))
    return rows


def _assign_owners(
    entity: EntitySpec,
    batch: list[dict[str, Any]],
    logins: list[DemoLogin],
    spec: AppSpec,
    values: DemoValues,
) -> None:
    """Give each login 30–60 of the rows its role owns (fewer of child records)."""
    free = list(range(len(batch)))
    values.random.shuffle(free)
    child = any(f.required and f.is_relation for f in entity.fields)
    for login in logins:
        for owned, f in owner_fields(login.role, spec):
            if owned.name != entity.name or f.type == "user":
                continue
            target = login.records.get(f.to or "")
            if target is None:
                continue
            share = values.random.randint(8, 20) if child else values.random.randint(30, 60)
            for _ in range(share):
                if not free:
                    return
                batch[free.pop()][f.column_name] = target


def rows_needed(entity: EntitySpec, rows: int, logins: list[DemoLogin], spec: AppSpec) -> int:
    """How many rows to make: `rows`, or enough for every owner's share and some more."""
    owners = sum(
        1
        for login in logins
        for owned, f in owner_fields(login.role, spec)
        if owned.name == entity.name and f.type != "user"
    )
    if not any(f.is_foreign_key for f in entity.fields) and len(entity.fields) <= 3:
        return max(5, rows // 5)
    return max(rows, owners * 60 + rows // 2)


def seed_demo(
    rows: int = 50, seed: int | None = None, logins: list[DemoLogin] | None = None
) -> dict[str, int]:
    """Insert demo records into every entity (fewer for small lookups); return counts.

    With `logins` (see `make_logins`) each login also gets its own records — the
    employee it is, the customers its role owns — so signing in as it shows a
    working day's data.
    """
    from app.state import state

    st = state()
    spec = st.spec
    values = DemoValues(spec.default_locale, seed)
    session = st.db.session
    counts: dict[str, int] = {}
    ids: dict[str, list[int]] = {}
    logins = logins or []
    for entity in entity_order(spec):
        table = st.models.table(entity.name)
        start = session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        count = rows_needed(entity, rows, logins, spec)
        batch = []
        now = utcnow()
        for i in range(count):
            row: dict[str, Any] = {}
            for f in entity.fields:
                if f.is_many:
                    continue
                if f.type == "user":
                    row[f.column_name] = None
                elif f.is_relation:
                    targets = ids.get(f.to or "") or []
                    row[f.column_name] = (
                        values.random.choice(targets)
                        if targets and (f.required or values.random.random() < 0.85)
                        else None
                    )
                else:
                    row[f.column_name] = values.value(entity, f, start + i + 1)
            created = now - dt.timedelta(
                days=values.random.randint(0, 180), minutes=values.random.randint(0, 1440)
            )
            row.update(created_at=created, updated_at=created)
            batch.append(row)
        if any(f.required and f.is_relation and not ids.get(f.to or "") for f in entity.fields):
            counts[entity.name] = 0
            continue
        _assign_owners(entity, batch, logins, spec, values)
        session.execute(sa.insert(table), batch)
        new_ids = list(
            session.execute(
                sa.select(table.c.id).order_by(table.c.id.desc()).limit(count)
            ).scalars()
        )
        for login, row in _link_rows(entity, logins, spec, values, ids, start + count):
            row.update(created_at=now, updated_at=now)
            login.records[entity.name] = session.execute(
                sa.insert(table).values(**row)
            ).inserted_primary_key[0]
            new_ids.append(login.records[entity.name])
        ids[entity.name] = new_ids
        counts[entity.name] = len(new_ids)
        for f in entity.fields:
            if f.is_many and ids.get(f.to or ""):
                assoc = st.models.m2m_tables[(entity.name, f.name)]
                left, right = list(assoc.c)
                links = {
                    (rid, values.random.choice(ids[f.to]))
                    for rid in new_ids  # type: ignore[index]
                    for _ in range(values.random.randint(0, 2))
                }
                if links:
                    session.execute(
                        sa.insert(assoc), [{left.name: a, right.name: b} for a, b in links]
                    )
        session.commit()
    return counts


def demo_password() -> str:
    """One password for every demo login: random, long enough for the strength check."""
    alphabet = string.ascii_letters + string.digits
    return "Demo-" + "".join(secrets.choice(alphabet) for _ in range(12))


demo = AppGroup("demo", help="Demo data.")


@demo.command("seed")
@click.option("--rows", default=50, show_default=True, help="Records per entity.")
@click.option("--seed", "random_seed", default=None, type=int, help="Repeatable output.")
@click.option(
    "--logins/--no-logins",
    default=True,
    show_default=True,
    help="Demo logins for every role, linked to employees.",
)
def demo_seed(rows: int, random_seed: int | None, logins: bool) -> None:
    """Fill every entity with believable demo records and make a demo login per role."""
    from app.context import Actor, acting_as
    from app.state import state

    spec = state().spec
    password = demo_password()
    people: list[DemoLogin] = []
    if logins:
        people = make_logins(spec, DemoValues(spec.default_locale, random_seed), password)
    with acting_as(Actor(None, "demo", "cli")):
        counts = seed_demo(rows, random_seed, people)
    lang = spec.default_locale
    for name, count in counts.items():
        click.echo(
            gettext(
                N_("%(entity)s: %(count)s rows"),
                entity=spec.entity(name).label.get(lang),
                count=count,
            )
        )
    if not people:
        return
    click.echo("")
    click.echo(gettext(N_("Demo logins (one per role, linked to their own records):")))
    for login in people:
        click.echo(f"  {login.username:<20} {login.role.label.get(lang):<12} {login.name}")
    click.echo(gettext(N_("Password of every demo login: %(password)s"), password=password))


def getting_started() -> dict[str, Any] | None:
    """What the empty dashboard suggests doing first, or None once any record exists.

    One `EXISTS` per entity, stopping at the first that has rows: cheap enough for
    the dashboard, and a console with data never shows the card.
    """
    from flask import current_app, url_for
    from flask_login import current_user

    from app.records.scope import is_admin
    from app.state import state

    st = state()
    session = st.db.session
    for entity in st.spec.entities:
        table = st.models.table(entity.name)
        if session.execute(sa.select(sa.exists().select_from(table))).scalar():
            return None
    me = st.spec.me_entity
    admin = current_user.is_authenticated and is_admin(current_user)
    return {
        "admin": admin,
        "users_url": url_for(f"{current_app.appbuilder.sm.user_view.endpoint}.list")
        if admin
        else None,
        "people_url": url_for(f"{st.spec.entity(me).class_name}View.list") if me else None,
        "people_label": st.spec.entity(me).label if me else None,
    }


def init_demo(app: Any, appbuilder: Any) -> None:
    """Give templates `sd_getting_started()` (the empty dashboard's first steps)."""
    app.jinja_env.globals["sd_getting_started"] = getting_started
