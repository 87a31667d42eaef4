"""Value parsers: turn what a person typed (form, API string, spreadsheet cell) into field values.

Each parser takes the raw cell (a string from CSV, or the typed value openpyxl
gives for XLSX) and returns the Python value, or raises `CellError` with a
translatable reason.
"""

from __future__ import annotations

import datetime as dt
import re
from datetime import tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from app.i18n import N_, current_lang
from app.schema.spec import FieldSpec

EXCEL_EPOCH = dt.datetime(1899, 12, 30)
TRUE_WORDS = {"1", "true", "t", "yes", "y", "是", "对", "真", "on"}
FALSE_WORDS = {"0", "false", "f", "no", "n", "否", "错", "假", "off"}
MANY_SEPARATORS = re.compile(r"\s*[,;，；、|]\s*")
THOUSANDS = re.compile(r"[,\s，_']")
DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
DATETIME_RE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?[ T]+"
    r"(\d{1,2})[:：](\d{1,2})(?:[:：](\d{1,2})(?:\.(\d{1,6}))?)?$"
)


class CellError(ValueError):
    """A cell that cannot become a value; `message` is a msgid, `params` fill it."""

    def __init__(self, message: str, **params: Any):
        super().__init__(message)
        self.message = message
        self.params = params


def is_blank(raw: Any) -> bool:
    """Return True for an empty cell (None or only whitespace)."""
    return raw is None or (isinstance(raw, str) and not raw.strip())


def cell_text(raw: Any) -> str:
    """Return a cell as text; whole floats from Excel lose their `.0`."""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, dt.datetime):
        return raw.isoformat(sep=" ")
    return str(raw).strip()


def parse_text(raw: Any, f: FieldSpec) -> str:
    return cell_text(raw)


def parse_integer(raw: Any, f: FieldSpec) -> int:
    if isinstance(raw, bool):
        raise CellError(N_("Not a whole number."))
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise CellError(N_("Not a whole number."))
    number = _decimal(raw)
    if number != number.to_integral_value():
        raise CellError(N_("Not a whole number."))
    return int(number)


def _decimal(raw: Any) -> Decimal:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return Decimal(str(raw))
    text = THOUSANDS.sub("", str(raw).strip())
    if text.endswith("%"):
        raise CellError(N_("Not a number."))
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CellError(N_("Not a number.")) from None
    if not value.is_finite():
        raise CellError(N_("Not a number."))
    return value


def parse_decimal(raw: Any, f: FieldSpec) -> Decimal:
    value = _decimal(raw)
    quantum = Decimal(1).scaleb(-f.scale)
    if value != value.quantize(quantum):
        raise CellError(N_("At most %(scale)s decimal places."), scale=f.scale)
    value = value.quantize(quantum)
    if len(value.as_tuple().digits) > f.precision:
        raise CellError(N_("Too many digits (at most %(precision)s)."), precision=f.precision)
    return value


def parse_boolean(raw: Any, f: FieldSpec) -> bool:
    if isinstance(raw, bool):
        return raw
    text = cell_text(raw).lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise CellError(N_("Not a yes/no value (use 是/否, yes/no, true/false or 1/0)."))


def _excel_serial(value: float) -> dt.datetime:
    if not 1 <= value < 2958466:
        raise CellError(N_("Not a date."))
    return EXCEL_EPOCH + dt.timedelta(days=value)


def parse_date(raw: Any, f: FieldSpec) -> dt.date:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return _excel_serial(float(raw)).date()
    text = cell_text(raw)
    match = DATE_RE.match(text)
    if match:
        try:
            return dt.date(*(int(g) for g in match.groups()))
        except ValueError:
            raise CellError(N_("Not a date.")) from None
    if re.fullmatch(r"\d{1,7}(\.\d+)?", text):
        return _excel_serial(float(text)).date()
    match = DATETIME_RE.match(text)
    if match:
        return parse_datetime(text, f).date()
    raise CellError(N_("Not a date (use 2024-03-05 or 2024/3/5)."))


def parse_datetime(raw: Any, f: FieldSpec) -> dt.datetime:
    if isinstance(raw, dt.datetime):
        return raw.replace(tzinfo=None)
    if isinstance(raw, dt.date):
        return dt.datetime(raw.year, raw.month, raw.day)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return _excel_serial(float(raw)).replace(microsecond=0)
    text = cell_text(raw)
    match = DATETIME_RE.match(text)
    if match:
        y, mo, d, h, mi, s, frac = match.groups()
        try:
            return dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0),
                               int((frac or "0").ljust(6, "0")))
        except ValueError:
            raise CellError(N_("Not a date and time.")) from None
    match = DATE_RE.match(text)
    if match:
        try:
            return dt.datetime(*(int(g) for g in match.groups()))
        except ValueError:
            raise CellError(N_("Not a date and time.")) from None
    if re.fullmatch(r"\d{1,7}(\.\d+)?", text):
        return _excel_serial(float(text)).replace(microsecond=0)
    raise CellError(N_("Not a date and time (use 2024-03-05 14:30 or 2024/3/5 14:30:00)."))


def choice_list(f: FieldSpec) -> str:
    """An enum's choices as the reader names them ("活跃、暂停"), for messages."""
    lang = current_lang()
    return ("、" if lang == "zh" else ", ").join(c.label.get(lang) for c in f.choices)


def parse_enum(raw: Any, f: FieldSpec) -> str:
    text = cell_text(raw)
    folded = text.casefold()
    for choice in f.choices:
        names = (choice.key, choice.label.en, choice.label.zh)
        if folded in (name.casefold() for name in names):
            return choice.key
    raise CellError(
        N_("'%(value)s' is not one of the choices: %(choices)s."),
        value=text,
        choices=choice_list(f),
    )


def split_many(raw: Any) -> list[str]:
    """Split a many-to-many cell on , ; ， ； 、 or |."""
    if is_blank(raw):
        return []
    return [part for part in MANY_SEPARATORS.split(cell_text(raw)) if part]


PARSERS = {
    "string": parse_text,
    "text": parse_text,
    "email": parse_text,
    "phone": parse_text,
    "url": parse_text,
    "integer": parse_integer,
    "decimal": parse_decimal,
    "boolean": parse_boolean,
    "date": parse_date,
    "datetime": parse_datetime,
    "enum": parse_enum,
}


def parse_cell(raw: Any, f: FieldSpec, zone: tzinfo | None = None) -> Any:
    """Return the value of a non-relation cell for field `f` (None when blank).

    A spreadsheet's date-time (typed text, an Excel date or serial) is what a
    person reads on the wall clock, so with `zone` (the importer passes the
    app's time zone, as the forms do) it is read there and returned as naive
    UTC, the way it is stored; without it, it is taken as UTC.
    """
    if is_blank(raw):
        return None
    value = PARSERS[f.type](raw, f)
    if zone is not None and f.type == "datetime":
        return in_utc(value, zone)
    return value


def in_utc(value: dt.datetime, zone: tzinfo) -> dt.datetime:
    """A naive wall-clock time in `zone` as naive UTC (how date-times are stored)."""
    return value.replace(tzinfo=zone).astimezone(dt.UTC).replace(tzinfo=None)


TEXT_INPUT_TYPES = ("string", "text", "email", "phone", "url")


def parse_input(raw: Any, f: FieldSpec, zone: tzinfo | None = None) -> Any:
    """Return the value of a JSON or form input for field `f` (None when empty).

    Strings go through the same parsers as spreadsheet cells, so `2026-11-23
    10:30`, `2026/11/23`, `1,234.50` and `是` mean what they mean in an import;
    JSON numbers and booleans are taken as they are. Raises `CellError`.

    A date-time without an offset is wall-clock time in `zone` when given (a
    form: the app's time zone, app/records/display.py), else UTC (the API);
    either way it is returned as naive UTC, the way it is stored.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if f.type in TEXT_INPUT_TYPES:
        if not isinstance(raw, str):
            raise CellError(N_("Not a valid text."))
        return raw.strip() if f.type != "text" else raw
    if isinstance(raw, dict | list):
        raise CellError(N_("Not a valid value."))
    if f.type == "datetime" and isinstance(raw, str):
        return _iso_datetime(raw.strip(), f, zone)
    if isinstance(raw, float) and f.type == "integer":
        raise CellError(N_("Not a whole number."))
    return PARSERS[f.type](raw, f)


def _iso_datetime(text: str, f: FieldSpec, zone: tzinfo | None = None) -> dt.datetime:
    """A typed date-time (in `zone`, else UTC), or an ISO 8601 one with an offset; as UTC."""
    try:
        value = parse_datetime(text, f)
        return in_utc(value, zone) if zone is not None else value
    except CellError:
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise CellError(N_("Not a date and time (use 2024-03-05 14:30 or "
                               "2024/3/5 14:30:00).")) from None
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
