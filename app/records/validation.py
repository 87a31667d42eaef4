"""What is valid: one validator set per field, built from the spec's options.

The form (WTForms), the REST API and the importer all ask `check_value`, so a
value is accepted or refused the same way everywhere, with the same translated
message. The checks are WTForms' own validators (Length, NumberRange, Regexp,
Email through email-validator, URL) run against a one-value stand-in field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask_babel import LazyString
from wtforms import validators

from app.i18n import N_, gettext
from app.records.values import choice_list
from app.schema.spec import FieldSpec

PHONE_PATTERN = r"^\+?[0-9][0-9\- ()]{5,30}$"
REQUIRED = N_("This field is required.")


def lazy_text(message: str, **params: Any) -> LazyString:
    """A message translated when shown, in the reader's language."""
    return LazyString(lambda: gettext(message, **params))


class _Value:
    """The little of a WTForms field that the validators read."""

    def __init__(self, data: Any):
        self.data = data
        self.raw_data = [data]
        self.errors: list[str] = []

    def gettext(self, text: str) -> str:
        return text

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural


def _range_message(f: FieldSpec) -> LazyString:
    if f.min is not None and f.max is not None:
        return lazy_text(N_("Must be between %(min)s and %(max)s."), min=f.min, max=f.max)
    if f.min is not None:
        return lazy_text(N_("Must be at least %(min)s."), min=f.min)
    return lazy_text(N_("Must be at most %(max)s."), max=f.max)


def field_checks(f: FieldSpec) -> tuple[Any, ...]:
    """Return the WTForms validators of a field's options (required is separate).

    Built once per field object: kept by identity, since hashing a FieldSpec
    (a frozen dataclass, field by field) costs more than most checks.
    """
    hit = _CHECKS.get(id(f))
    if hit is None or hit[0] is not f:
        if len(_CHECKS) >= 4096:  # specs replaced many times (designer reloads)
            _CHECKS.clear()
            _TEXT_VERDICTS.clear()  # keyed by the ids of the fields held here
        hit = _CHECKS[id(f)] = (f, _build_checks(f))
    return hit[1]


_CHECKS: dict[int, tuple[FieldSpec, tuple[Any, ...]]] = {}
# (field, text) -> the messages its checks gave (lazy: translated when read); bounded
_TEXT_VERDICTS: dict[tuple[int, str], tuple[Any, ...]] = {}
TEXT_VERDICTS_MAX = 20_000


def _build_checks(f: FieldSpec) -> tuple[Any, ...]:
    """Return the WTForms validators of a field's options (required is separate)."""
    result: list[Any] = []
    length = f.max_length or f.length
    if f.type in ("string", "text", "email", "phone", "url") and length:
        result.append(validators.Length(
            max=length, message=lazy_text(N_("At most %(max)s characters."), max=length)))
    if f.type in ("integer", "decimal") and (f.min is not None or f.max is not None):
        result.append(validators.NumberRange(min=f.min, max=f.max, message=_range_message(f)))
    if f.pattern:
        result.append(validators.Regexp(
            f.pattern, message=lazy_text(N_("Does not match the required format."))))
    if f.type == "email":
        # syntax only: no DNS lookup per address (WTForms' default, said here on purpose)
        result.append(validators.Email(message=lazy_text(N_("Not a valid email address.")),
                                       check_deliverability=False))
    if f.type == "phone":
        result.append(validators.Regexp(
            PHONE_PATTERN, message=lazy_text(N_("Not a valid phone number."))))
    if f.type == "url":
        result.append(validators.URL(message=lazy_text(N_("Not a valid URL."))))
    return tuple(result)


def check_value(f: FieldSpec, value: Any) -> list[str]:
    """Return why `value` (already parsed; None for empty) is not valid for `f`."""
    if value is None or value == "":
        return [gettext(REQUIRED)] if f.required and not f.is_many else []
    if f.type == "enum" and value not in {c.key for c in f.choices}:
        return [gettext(N_("'%(value)s' is not one of the choices: %(choices)s."),
                        value=value, choices=choice_list(f))]
    if f.type == "decimal" and isinstance(value, Decimal):
        problem = decimal_problem(f, value)
        if problem:
            return [problem]
    checks = field_checks(f)
    if not checks:
        return []
    if not isinstance(value, str):
        return [str(m) for m in _run_checks(checks, value)]
    # A text's verdict depends on the text only: an import checks each distinct
    # value of a column once (e-mail syntax is the costly one).
    key = (id(f), value)
    found = _TEXT_VERDICTS.get(key)
    if found is None:
        if len(_TEXT_VERDICTS) >= TEXT_VERDICTS_MAX:
            _TEXT_VERDICTS.clear()  # bounded: memory stays flat whatever the file's size
        found = _TEXT_VERDICTS[key] = _run_checks(checks, value)
    return [str(m) for m in found]


def _run_checks(checks: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
    """The messages (lazy) of the checks `value` fails."""
    messages: list[Any] = []
    for validator in checks:
        try:
            validator(None, _Value(value))
        except (validators.ValidationError, validators.StopValidation) as exc:
            messages.append(exc.args[0] if exc.args else str(exc))
    return tuple(messages)


def decimal_problem(f: FieldSpec, value: Decimal) -> str | None:
    """Return why a decimal does not fit the column (scale, precision), or None."""
    quantum = Decimal(1).scaleb(-f.scale)
    if value != value.quantize(quantum):
        return gettext(N_("At most %(scale)s decimal places."), scale=f.scale)
    if len(value.quantize(quantum).as_tuple().digits) > f.precision:
        return gettext(N_("Too many digits (at most %(precision)s)."), precision=f.precision)
    return None
