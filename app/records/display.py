"""How values are shown to people: the app's time zone, money, and who made a record.

Times are stored as naive UTC; people see and type them in the schema's
`app.timezone` (default Asia/Shanghai). These helpers are the one place that
converts, so lists, detail pages, boards, forms and reminders agree. The REST
API does not use them: it speaks UTC ISO 8601 (see docs/schema.md).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import g, has_app_context

from app.schema.spec import DEFAULT_TIMEZONE

EMPTY = "—"


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo of an IANA name (cached: made once per name)."""
    return ZoneInfo(name)


def app_zone() -> ZoneInfo:
    """The schema's `app.timezone` (Asia/Shanghai outside an app)."""
    if has_app_context():
        from app.state import state

        return zone(state().spec.timezone)
    return zone(DEFAULT_TIMEZONE)


def to_local(value: dt.datetime, tz: ZoneInfo | None = None) -> dt.datetime:
    """A stored (naive UTC) or aware datetime as naive wall-clock time in the app zone."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(tz or app_zone()).replace(tzinfo=None)


def local_to_utc(value: dt.datetime, tz: ZoneInfo | None = None) -> dt.datetime:
    """A naive wall-clock time in the app zone (or an aware one) as naive UTC for storage."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=tz or app_zone())
    return aware.astimezone(dt.UTC).replace(tzinfo=None)


def local_now() -> dt.datetime:
    """Now, as wall-clock time in the app zone (naive)."""
    return to_local(dt.datetime.now(dt.UTC))


def local_today() -> dt.date:
    """Today's date in the app zone (not the server's)."""
    return local_now().date()


def format_datetime(value: dt.datetime) -> str:
    """`2026-11-23 10:30`: a stored time in the app zone, to the minute."""
    return to_local(value).strftime("%Y-%m-%d %H:%M")


def format_money(
    value: Decimal | float | int, currency: str, scale: int = 2, lang: str = "zh"
) -> str:
    """`¥1,234.50` (zh) / `CN¥1,234.50` (en): a value with its currency's sign."""
    from babel.numbers import format_currency

    pattern = "¤#,##0" + ("." + "0" * scale if scale > 0 else "")
    locale = "zh_CN" if lang == "zh" else "en_US"
    return format_currency(
        Decimal(str(value)), currency, format=pattern, locale=locale, currency_digits=False
    )


def format_decimal(
    value: Decimal | float | int, scale: int = 2, currency: str | None = None, lang: str = "zh"
) -> str:
    """A decimal with thousands separators at `scale`, as money when `currency` is set."""
    if currency:
        return format_money(value, currency, scale, lang)
    return f"{Decimal(str(value)):,.{scale}f}"


def person_name(user: Any) -> str:
    """Who a login is, in words: the name of its linked employee, else the login's name.

    Cached per request: a list page asks for the same few people on every row.
    """
    if user is None:
        return EMPTY
    user_id = getattr(user, "id", user)
    cache = g.setdefault("_sd_person_names", {}) if has_app_context() else {}
    if user_id not in cache:
        cache[user_id] = _linked_name(user_id) or _login_name(user)
    return cache[user_id]


def _linked_name(user_id: Any) -> str | None:
    """The title of the `$me` record (e.g. the employee) whose user field is `user_id`."""
    from app.state import state

    st = state()
    if st.spec.me_entity is None:
        return None
    entity = st.spec.entity(st.spec.me_entity)
    if (
        entity.user_field is None
        or not entity.title
        or entity.title == "id"
        or entity.field(entity.title).sensitive
    ):
        return None
    table = st.models.table(entity.name)
    with st.db.session.no_autoflush:
        found = st.db.session.execute(
            sa.select(table.c[entity.field(entity.title).column_name])
            .where(table.c[entity.user_field.column_name] == user_id)
            .order_by(table.c.id)
            .limit(1)
        ).scalar()
    return None if found in (None, "") else str(found)


def _login_name(user: Any) -> str:
    if not hasattr(user, "username"):
        from flask_appbuilder.security.sqla.models import User

        from app.state import state

        user = state().db.session.get(User, user)
        if user is None:
            return EMPTY
    full = " ".join(p for p in (user.first_name, user.last_name) if p and p.strip())
    return full.strip() or user.username


def local_sql(column: Any, dialect: str) -> Any:
    """SQL for a stored UTC time column as wall-clock time in the app zone.

    Shifts by the zone's offset now (exact for zones without summer time, such
    as Asia/Shanghai; elsewhere a period boundary may be off by the DST hour),
    so charts group by the local day, week or month.
    """
    offset = app_zone().utcoffset(dt.datetime.now())
    minutes = int(offset.total_seconds() // 60) if offset else 0
    if minutes == 0:
        return column
    if dialect == "postgresql":
        return column + sa.literal_column(f"interval '{minutes} minutes'")
    if dialect == "mysql":
        return sa.func.timestampadd(
            sa.literal_column("MINUTE"), sa.literal_column(str(minutes)), column
        )
    if dialect == "sqlite":
        return sa.func.datetime(column, sa.literal_column(f"'{minutes:+d} minutes'"))
    return column
