"""Per-subject keys (加密粉碎, crypto-shredding): seal a data subject's values, destroy the key.

Each record of a `subject:` entity gets a random Fernet data key, stored in
`subject_key` wrapped (encrypted) by the instance key (FIELD_ENCRYPTION_KEYS).
Its sealed fields (`EntitySpec.sealed_fields`) are stored as
`sk1:<key id>:<Fernet token>` in the table, in the audit log's diffs and so in
every backup. Erasing the record deletes the key row: every copy, old backups
included, is then ciphertext nobody can read, while the audit chain (which
hashes the ciphertext) still verifies.

Keys are cached per process for `CACHE_SECONDS`: a key destroyed by another
process may still open values here for that long (the erased record itself is
already gone or anonymised by then).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

PREFIX = "sk1:"
CACHE_SECONDS = 30.0
_cache: dict[str, tuple[float, Fernet]] = {}
_lock = threading.Lock()


class SealedStr(str):
    """A text value on its way to a sealed column, carrying the id of its record's key."""

    key_id: str

    def __new__(cls, text: str, key_id: str) -> SealedStr:
        obj = super().__new__(cls, text)
        obj.key_id = key_id
        return obj


def is_token(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def key_id_of(token: str) -> str | None:
    """The key id inside a sealed token, or None."""
    if not is_token(token):
        return None
    return token[len(PREFIX):].split(":", 1)[0]


def _table() -> sa.Table:
    from app.state import state

    return state().models.system["subject_key"]


def _remember(key_id: str, fernet: Fernet) -> None:
    with _lock:
        _cache[key_id] = (time.monotonic() + CACHE_SECONDS, fernet)


def forget(key_ids: Any) -> None:
    """Drop keys from this process's cache (after destroying them)."""
    with _lock:
        for key_id in key_ids:
            _cache.pop(key_id, None)


def _cached(key_id: str) -> Fernet | None:
    with _lock:
        hit = _cache.get(key_id)
    if hit is None or hit[0] < time.monotonic():
        return None
    return hit[1]


def create_key(conn: Any, entity: str, record_id: Any = None) -> str:
    """Make a new data key for a record of `entity` in `conn`'s transaction; return its id."""
    from app.security.encryption import cipher

    raw = Fernet.generate_key()
    key_id = uuid.uuid4().hex
    conn.execute(sa.insert(_table()).values(
        id=key_id, entity=entity, record_id=None if record_id is None else str(record_id),
        wrapped=cipher().encrypt(raw).decode("ascii"),
        created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    _remember(key_id, Fernet(raw))
    return key_id


def link_key(conn: Any, key_id: str, record_id: Any) -> None:
    """Name the record a key was made for once its id is known (after the INSERT)."""
    table = _table()
    conn.execute(sa.update(table).where(table.c.id == key_id).values(record_id=str(record_id)))


def record_key(conn: Any, entity: str, record_id: Any, create: bool = True) -> str | None:
    """The id of the key of record `record_id` of `entity` (made if missing and `create`)."""
    table = _table()
    found = conn.execute(
        sa.select(table.c.id).where(table.c.entity == entity,
                                    table.c.record_id == str(record_id))
        .order_by(table.c.created_at, table.c.id).limit(1)).scalar()
    if found is None and create:
        found = create_key(conn, entity, record_id)
    return found


def _fernet(key_id: str, conn: Any = None) -> Fernet | None:
    """The data key `key_id`, or None when it was destroyed (or never existed)."""
    hit = _cached(key_id)
    if hit is not None:
        return hit
    from app.security.encryption import cipher
    from app.state import state

    table = _table()
    stmt = sa.select(table.c.wrapped).where(table.c.id == key_id)
    if conn is not None:
        wrapped = conn.execute(stmt).scalar()
    else:
        with state().db.engine.connect() as own:
            wrapped = own.execute(stmt).scalar()
    if wrapped is None:
        return None
    try:
        fernet = Fernet(cipher().decrypt(wrapped.encode("ascii")))
    except InvalidToken:
        return None  # wrapped by an instance key this console no longer has
    _remember(key_id, fernet)
    return fernet


def seal(key_id: str, text: str, conn: Any = None) -> str:
    """Return `text` sealed under key `key_id` (a `sk1:` token)."""
    fernet = _fernet(key_id, conn)
    if fernet is None:
        raise ValueError(f"subject key {key_id} is gone; nothing can be sealed with it")
    return f"{PREFIX}{key_id}:{fernet.encrypt(text.encode('utf-8')).decode('ascii')}"


def unseal(token: str, conn: Any = None) -> str | None:
    """The text of a sealed token, or None when its key was destroyed (erased)."""
    key_id = key_id_of(token)
    if key_id is None:
        return token
    fernet = _fernet(key_id, conn)
    if fernet is None:
        return None
    try:
        return fernet.decrypt(token.split(":", 2)[2].encode("ascii")).decode("utf-8")
    except (InvalidToken, IndexError):
        return None


def erased_text() -> str:
    """What a reader sees in place of a value whose key was destroyed."""
    from app.i18n import N_, gettext

    return gettext(N_("erased"))


def bind_value(value: Any) -> Any:
    """The stored form of a value of a sealed column (see `app.models.types.SubjectText`)."""
    if value is None or value == "":
        return value
    if isinstance(value, SealedStr):
        return seal(value.key_id, str(value))
    if is_token(value):
        return value  # already sealed (bulk writes, restores, key rotation)
    raise ValueError("a sealed field was written without its record's key; "
                     "write it through the record service")


WRAPPED_SEP = "|"  # in neither a key id nor a Fernet token (URL-safe base64)


def with_wrapped_key(column: Any, type_: Any) -> Any:
    """`column`, and for a sealed token its wrapped key appended (`token|wrapped`, or
    `token|` once the key is destroyed): a list decrypts its rows without a query each.

    A correlated lookup of `subject_key`'s primary key, the key id being the 32
    characters after `sk1:`; values not sealed yet come back as they are.
    """
    keys = sa.table("subject_key", sa.column("id", sa.String), sa.column("wrapped", sa.Text))
    wrapped = (sa.select(keys.c.wrapped)
               .where(keys.c.id == sa.func.substr(column, len(PREFIX) + 1, 32))
               .scalar_subquery())
    plain = sa.type_coerce(column, sa.Text)
    joined = plain.concat(WRAPPED_SEP).concat(sa.func.coalesce(wrapped, ""))
    return sa.type_coerce(sa.case((plain.like(f"{PREFIX}%"), joined), else_=plain), type_)


def _unseal_with(value: str) -> str | None:
    """The text of `token|wrapped` (see `with_wrapped_key`), or None when erased."""
    token, _, wrapped = value.rpartition(WRAPPED_SEP)
    key_id = key_id_of(token)
    if not wrapped or key_id is None:
        return None
    fernet = _cached(key_id)
    if fernet is None:
        from app.security.encryption import cipher

        try:
            fernet = Fernet(cipher().decrypt(wrapped.encode("ascii")))
        except InvalidToken:
            return None
        _remember(key_id, fernet)
    try:
        return fernet.decrypt(token.split(":", 2)[2].encode("ascii")).decode("utf-8")
    except (InvalidToken, IndexError):
        return None


def result_value(value: Any) -> Any:
    """The clear text of a stored sealed value (or "erased"); older instance-key tokens too."""
    if value is None or value == "":
        return value
    if is_token(value):
        text = _unseal_with(value) if WRAPPED_SEP in value else unseal(value)
        return erased_text() if text is None else text
    from app.security.encryption import decrypt

    return decrypt(value)


def rewrap_all() -> int:
    """Re-wrap every subject key with the newest instance key; return how many."""
    from app.security.encryption import cipher
    from app.state import state

    table, multi, done = _table(), cipher(), 0
    with state().db.engine.begin() as conn:
        for key_id, wrapped in conn.execute(sa.select(table.c.id, table.c.wrapped)).all():
            new = multi.rotate(wrapped.encode("ascii")).decode("ascii")
            conn.execute(sa.update(table).where(table.c.id == key_id).values(wrapped=new))
            done += 1
    return done


def reseal(token: str) -> str:
    """The same value sealed again under the same key (fresh ciphertext); as is if erased."""
    key_id, text = key_id_of(token), unseal(token)
    if key_id is None or text is None:
        return token
    return seal(key_id, text)
