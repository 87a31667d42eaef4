"""Field encryption at rest with Fernet / MultiFernet (newest key first)."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


def cipher() -> MultiFernet:
    """Return the MultiFernet for the current app's FIELD_ENCRYPTION_KEYS."""
    cached = current_app.extensions.get("schemadesk_cipher")
    if cached is None:
        keys = current_app.config["FIELD_ENCRYPTION_KEYS"]
        cached = MultiFernet([Fernet(k.strip().encode()) for k in keys if k.strip()])
        current_app.extensions["schemadesk_cipher"] = cached
    return cached


def encrypt(value: str) -> str:
    return cipher().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return cipher().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        # A value written before encryption was switched on, or with a lost key:
        # show it as stored rather than failing the whole page.
        return token


def rotate_all(batch: int = 500) -> dict[str, int]:
    """Re-encrypt every encrypted column with the newest key; return rows per entity.

    Values readable with any configured key are re-encrypted with the first
    one; values stored in clear (written before the field was encrypted) are
    encrypted. Raw column values are read and written, bypassing the type.
    A data subject's keys are re-wrapped with the newest key (`subject_key` in
    the result) and its sealed values sealed afresh under the same subject key.
    """
    import sqlalchemy as sa

    from app.privacy.keys import is_token, reseal, rewrap_all
    from app.privacy.lookup import column_name
    from app.state import state

    st = state()
    multi = cipher()
    counts: dict[str, int] = {}
    # A data subject's values are under its own key: re-wrap those keys first.
    subject_keys = rewrap_all()
    current_app.extensions.pop("schemadesk_blind_key", None)  # derived from the newest key
    for entity in st.spec.entities:
        names = [f.name for f in entity.fields if f.encrypted or entity.is_sealed(f.name)]
        if not names:
            continue
        raw = sa.table(entity.name, sa.column("id"), *(sa.column(n, sa.Text) for n in names),
                       *(sa.column(column_name(f.name)) for f in entity.blind_fields))
        done = 0
        last_id = 0
        with st.db.engine.connect() as conn:
            while True:
                rows = conn.execute(
                    sa.select(raw).where(raw.c.id > last_id).order_by(raw.c.id).limit(batch)
                ).all()
                if not rows:
                    break
                for row in rows:
                    values = {}
                    for name in names:
                        token = getattr(row, name)
                        if token is None:
                            continue
                        if is_token(token):
                            values[name] = reseal(token)
                            continue
                        try:
                            new = multi.rotate(token.encode("ascii")).decode("ascii")
                        except (InvalidToken, UnicodeEncodeError):
                            new = encrypt(token)
                        values[name] = new
                    values.update(_blind_indexes(entity, row))
                    if values:
                        conn.execute(sa.update(raw).where(raw.c.id == row.id).values(**values))
                        done += 1
                    last_id = row.id
                conn.commit()
        counts[entity.name] = done
    counts["subject_key"] = subject_keys
    return counts


def _blind_indexes(entity: Any, row: Any) -> dict[str, str]:
    """The blind indexes of a row's sealed lookup values, under the newest key."""
    from app.privacy.keys import is_token, unseal
    from app.privacy.lookup import blind, column_name

    out = {}
    for f in entity.blind_fields:
        token = getattr(row, f.name)
        text = unseal(token) if is_token(token) else token
        if text not in (None, ""):
            out[column_name(f.name)] = blind(entity.name, f, text)
    return out
