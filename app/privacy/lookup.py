"""Blind indexes (盲索引): look sealed values up without keeping them in clear.

A data subject's sensitive field that is searched, filtered, unique or the
import key (`EntitySpec.blind_fields`, the CRM customer's phone) is sealed like
every other sensitive value (app/privacy/keys.py) and keeps, next to it, a
`<name>__bi` column: HMAC-SHA256 of the normalised value under a key derived
from the instance key (the first of FIELD_ENCRYPTION_KEYS). Equality search,
filters, the unique constraint and the import key compare that column; the
database never holds the clear value, so neither do backups. Erasure clears it
with the value.

What it costs: these fields match whole values only (a phone number typed in
full finds its customer, a part of it finds nothing) and cannot be sorted.
Whoever holds the instance key can test guesses against a blind index (phone
numbers are few enough to try them all): the instance key stays out of
backups (docs/privacy.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import sqlalchemy as sa

from app.schema.spec import EntitySpec, FieldSpec

SUFFIX = "__bi"
LENGTH = 64
_PHONE_NOISE = re.compile(r"[\s\-().]")


def column_name(name: str) -> str:
    """The blind-index column of field `name`."""
    return f"{name}{SUFFIX}"


def _key() -> bytes:
    from flask import current_app

    cached = current_app.extensions.get("schemadesk_blind_key")
    if cached is None:
        keys = [k.strip() for k in current_app.config["FIELD_ENCRYPTION_KEYS"] if k.strip()]
        cached = hmac.new(keys[0].encode("ascii"), b"schemadesk blind index v1",
                          hashlib.sha256).digest()
        current_app.extensions["schemadesk_blind_key"] = cached
    return cached


def normalise(f: FieldSpec, text: str) -> str:
    """The form of `text` the index keeps: what a person may type differently, made one."""
    text = str(text).strip()
    if f.type == "phone":
        return _PHONE_NOISE.sub("", text)
    if f.type == "email":
        return text.lower()
    return text


def blind(entity: str, f: FieldSpec, text: str) -> str:
    """The blind index of `text` for field `f` of `entity`."""
    message = f"{entity}.{f.name}\x00{normalise(f, text)}".encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def index_values(entity: EntitySpec, values: dict[str, Any]) -> dict[str, Any]:
    """The blind-index columns for the blind fields present in `values` (clear text).

    Sealed tokens (a restore, a key rotation) are left alone: their index is
    already stored.
    """
    from app.privacy.keys import is_token

    out: dict[str, Any] = {}
    for f in entity.blind_fields:
        if f.name not in values:
            continue
        value = values[f.name]
        if value is None or value == "":
            out[column_name(f.name)] = None
        elif not is_token(value):
            out[column_name(f.name)] = blind(entity.name, f, str(value))
    return out


def equals(table: sa.Table, entity: EntitySpec, f: FieldSpec, values: Any) -> Any:
    """The criterion "field `f` equals one of `values`" over the blind index."""
    if isinstance(values, str | int | float):
        values = [values]
    hashes = [blind(entity.name, f, str(v)) for v in values if str(v).strip()]
    column = table.c[column_name(f.name)]
    if len(hashes) == 1:
        return column == hashes[0]
    return column.in_(hashes)


def backfill(conn: Any, entity: EntitySpec, batch: int = 500) -> int:
    """Seal the clear values of `entity`'s sealed fields and fill missing blind indexes.

    Values written before a field was sealed (an upgrade, a field made
    sensitive in the designer, an old backup restored) are sealed under the
    record's key; returns the rows rewritten.
    """
    from app.privacy.keys import is_token, record_key, seal, unseal
    from app.security.encryption import decrypt

    names = [f.name for f in entity.sealed_fields]
    if not names:
        return 0
    blinds = [f.name for f in entity.blind_fields]
    raw = sa.table(entity.name, sa.column("id"), *(sa.column(n, sa.Text) for n in names),
                   *(sa.column(column_name(n), sa.String) for n in blinds))
    pending = sa.or_(
        *(sa.and_(raw.c[n].isnot(None), raw.c[n] != "", ~raw.c[n].like("sk1:%"))
          for n in names),
        *(sa.and_(raw.c[n].isnot(None), raw.c[n] != "", raw.c[column_name(n)].is_(None))
          for n in blinds))
    done, last_id = 0, 0
    while True:
        rows = conn.execute(sa.select(raw).where(pending, raw.c.id > last_id)
                            .order_by(raw.c.id).limit(batch)).all()
        if not rows:
            return done
        for row in rows:
            last_id = row.id
            key_id = record_key(conn, entity.name, row.id)
            values: dict[str, Any] = {}
            for n in names:
                stored = getattr(row, n)
                if stored in (None, "") or is_token(stored):
                    continue
                values[n] = seal(key_id, decrypt(stored), conn)
            for n in blinds:
                stored = getattr(row, n)
                if stored in (None, ""):
                    continue
                text = unseal(stored, conn) if is_token(stored) else decrypt(stored)
                if text is not None:
                    values[column_name(n)] = blind(entity.name, entity.field(n), text)
            if values:
                conn.execute(sa.update(raw).where(raw.c.id == row.id).values(**values))
                done += 1


def backfill_all(conn: Any = None) -> dict[str, int]:
    """`backfill` every data subject; in `conn`'s transaction or one of its own."""
    from app.state import state

    st = state()
    subjects = [e for e in st.spec.entities if e.sealed_fields]
    if not subjects:
        return {}
    if conn is not None:
        return {e.name: backfill(conn, e) for e in subjects}
    with st.db.engine.begin() as own:
        return {e.name: backfill(own, e) for e in subjects}
