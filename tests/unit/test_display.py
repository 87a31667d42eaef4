"""Time zone and money: how values are shown and how typed times are read."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from app.records.display import format_decimal, format_money, local_to_utc, to_local
from app.records.values import CellError, parse_input
from app.schema.spec import FieldSpec, Label

WHEN = FieldSpec("followed_at", "datetime", Label("Followed at", "跟进时间"))
SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def test_form_time_is_read_in_the_app_zone_and_stored_utc() -> None:
    assert parse_input("2026-11-23 10:30", WHEN, zone=SHANGHAI) == dt.datetime(2026, 11, 23, 2, 30)
    assert parse_input("2026/11/23 10:30", WHEN, zone=SHANGHAI) == dt.datetime(2026, 11, 23, 2, 30)
    # what <input type=datetime-local> sends
    assert parse_input("2026-11-23T10:30", WHEN, zone=SHANGHAI) == dt.datetime(2026, 11, 23, 2, 30)
    # a date alone is midnight, local
    assert parse_input("2026-11-23", WHEN, zone=SHANGHAI) == dt.datetime(2026, 11, 22, 16, 0)


def test_api_time_without_offset_is_utc_and_with_offset_is_converted() -> None:
    assert parse_input("2026-11-23 10:30", WHEN) == dt.datetime(2026, 11, 23, 10, 30)
    assert parse_input("2026-11-23T10:30:00+08:00", WHEN) == dt.datetime(2026, 11, 23, 2, 30)
    utc = parse_input("2026-11-23T02:30:00Z", WHEN, zone=SHANGHAI)
    assert utc == dt.datetime(2026, 11, 23, 2, 30)


def test_summer_time_zone_follows_the_date() -> None:
    summer = local_to_utc(dt.datetime(2026, 7, 1, 12, 0), BERLIN)
    winter = local_to_utc(dt.datetime(2026, 12, 1, 12, 0), BERLIN)
    assert (summer.hour, winter.hour) == (10, 11)
    assert to_local(summer, BERLIN) == dt.datetime(2026, 7, 1, 12, 0)


def test_stored_utc_is_shown_in_the_zone_across_midnight() -> None:
    assert to_local(dt.datetime(2026, 11, 23, 20, 15), SHANGHAI) == dt.datetime(2026, 11, 24, 4, 15)


def test_bad_time_is_refused_with_a_reason() -> None:
    with pytest.raises(CellError):
        parse_input("2026-11-23 25:99", WHEN, zone=SHANGHAI)


@pytest.mark.parametrize(
    "value, currency, scale, lang, shown",
    [
        (Decimal("1234.5"), "CNY", 2, "zh", "¥1,234.50"),
        (Decimal("1234.5"), "CNY", 2, "en", "CN¥1,234.50"),
        (Decimal("-99.9"), "USD", 2, "en", "-$99.90"),
        (Decimal("1000000"), "CNY", 0, "zh", "¥1,000,000"),
        (Decimal("0"), "EUR", 2, "zh", "€0.00"),
    ],
)
def test_money_has_its_sign_and_separators(
    value: Decimal, currency: str, scale: int, lang: str, shown: str
) -> None:
    assert format_money(value, currency, scale, lang) == shown


def test_decimal_without_currency_keeps_separators() -> None:
    assert format_decimal(Decimal("1234567.891"), 3) == "1,234,567.891"
    assert format_decimal(Decimal("12"), 2, "CNY", "zh") == "¥12.00"
