"""`schemadesk demo seed`: believable demo rows for any schema, with Faker (zh_CN/en_US)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from app.i18n import N_, gettext
from app.models import utcnow
from app.schema.spec import AppSpec, EntitySpec, FieldSpec


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
            return rnd.choice(f.choices).key if f.choices else None
        if f.type == "boolean":
            return rnd.random() < 0.5
        if f.type == "integer":
            low = int(f.min) if f.min is not None else 0
            high = int(f.max) if f.max is not None else max(low + 100, 100)
            return rnd.randint(low, high)
        if f.type == "decimal":
            low = float(f.min) if f.min is not None else 0.0
            high = float(f.max) if f.max is not None else min(10 ** (f.precision - f.scale) - 1,
                                                             100000.0)
            return Decimal(str(round(rnd.uniform(low, high), f.scale)))
        if f.type == "date":
            return fake.date_between(start_date="-2y", end_date="+30d")
        if f.type == "datetime":
            return fake.date_time_between(start_date="-2y", end_date="now").replace(microsecond=0)
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

    def _string(self, entity: EntitySpec, f: FieldSpec, index: int) -> str:
        name, fake = f.name.lower(), self.zh
        if name.endswith(("_no", "no", "sku", "code")) or name in ("sku", "isbn"):
            return f"{entity.name[:3].upper()}{index:06d}"
        if name in ("name", "full_name") and entity.name in ("customer", "company", "supplier"):
            return fake.company()
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


def seed_demo(rows: int = 50, seed: int | None = None) -> dict[str, int]:
    """Insert `rows` demo records into every entity (fewer for small lookups); return counts."""
    from app.state import state

    st = state()
    values = DemoValues(st.spec.default_locale, seed)
    session = st.db.session
    counts: dict[str, int] = {}
    ids: dict[str, list[int]] = {}
    for entity in entity_order(st.spec):
        table = st.models.table(entity.name)
        start = session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        count = max(5, rows // 5) if not any(f.is_foreign_key for f in entity.fields) \
            and len(entity.fields) <= 3 else rows
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
                    row[f.column_name] = values.random.choice(targets) if targets and (
                        f.required or values.random.random() < 0.85) else None
                else:
                    row[f.column_name] = values.value(entity, f, start + i + 1)
            created = now - dt.timedelta(days=values.random.randint(0, 600),
                                         minutes=values.random.randint(0, 1440))
            row.update(created_at=created, updated_at=created)
            batch.append(row)
        if any(f.required and f.is_relation and not ids.get(f.to or "") for f in entity.fields):
            counts[entity.name] = 0
            continue
        session.execute(sa.insert(table), batch)
        new_ids = list(session.execute(
            sa.select(table.c.id).order_by(table.c.id.desc()).limit(count)).scalars())
        ids[entity.name] = new_ids
        counts[entity.name] = count
        for f in entity.fields:
            if f.is_many and ids.get(f.to or ""):
                assoc = st.models.m2m_tables[(entity.name, f.name)]
                left, right = list(assoc.c)
                links = {(rid, values.random.choice(ids[f.to])) for rid in new_ids  # type: ignore[index]
                         for _ in range(values.random.randint(0, 2))}
                if links:
                    session.execute(sa.insert(assoc),
                                    [{left.name: a, right.name: b} for a, b in links])
        session.commit()
    return counts


demo = AppGroup("demo", help="Demo data.")


@demo.command("seed")
@click.option("--rows", default=50, show_default=True, help="Records per entity.")
@click.option("--seed", "random_seed", default=None, type=int, help="Repeatable output.")
def demo_seed(rows: int, random_seed: int | None) -> None:
    """Fill every entity with believable demo records (Faker, zh_CN and en_US)."""
    from app.context import Actor, acting_as

    with acting_as(Actor(None, "demo", "cli")):
        counts = seed_demo(rows, random_seed)
    for name, count in counts.items():
        click.echo(gettext(N_("%(entity)s: %(count)s rows"), entity=name, count=count))
