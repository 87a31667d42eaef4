"""Form fields that read what a person types the way the API and the importer do.

Every non-relation field of a generated form is a `SpecField`: its text goes
through `app.records.values.parse_input` (so `2026-11-23 10:30`, `2026/11/23`,
`1,234.50` and `否` mean the same as in an import or an API call) and its value
through the record service's checks (`app.records.validation.check_value`),
so a value is accepted or refused with the same message everywhere. Widgets
are the browser's own (`date`, `datetime-local`), which speak the user's
language and send the time with the date.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask_babel import LazyString
from markupsafe import Markup
from wtforms import Field, validators
from wtforms.widgets import Select, TextArea, TextInput, html_params

from app.i18n import N_, current_lang, gettext
from app.records.display import app_zone, local_now, local_to_utc, local_today, to_local
from app.records.validation import check_value
from app.records.values import CellError, parse_input
from app.schema.spec import FieldSpec, Label


def lazy_label(label: Label) -> LazyString:
    return LazyString(lambda: label.get(current_lang()))


class InputWidget(TextInput):
    """A Bootstrap text input of a given HTML type (date, datetime-local, text)."""

    def __init__(self, input_type: str = "text", **attrs: Any):
        super().__init__()
        self.input_type = input_type
        self.attrs = attrs

    def __call__(self, field: Any, **kwargs: Any) -> Markup:
        kwargs["class"] = "form-control"
        for key, value in self.attrs.items():
            kwargs.setdefault(key, value)
        return super().__call__(field, **kwargs)


class AreaWidget(TextArea):
    def __call__(self, field: Any, **kwargs: Any) -> Markup:
        kwargs["class"] = "form-control"
        kwargs.setdefault("rows", 3)
        return super().__call__(field, **kwargs)


class ChoiceWidget(Select):
    """A select whose options are the field's `choices()` (enum labels, 是/否)."""

    def __call__(self, field: Any, **kwargs: Any) -> Markup:
        kwargs["class"] = "form-control"
        kwargs.setdefault("id", field.id)
        html = [f"<select {html_params(name=field.name, **kwargs)}>"]
        current = field._value()
        for value, label in field.choices():
            selected = " selected" if value == current else ""
            html.append(f'<option value="{Markup.escape(value)}"{selected}>'
                        f"{Markup.escape(label)}</option>")
        html.append("</select>")
        return Markup("".join(html))


class SpecField(Field):
    """One field of the schema in a form: parsed and checked by the record service."""

    def __init__(self, spec: FieldSpec, keep_masked: Any = None, **kwargs: Any):
        self.spec = spec
        self.keep_masked = keep_masked
        kwargs.setdefault("label", lazy_label(spec.label))
        if spec.help is not None:
            kwargs.setdefault("description", lazy_label(spec.help))
        kwargs.setdefault("widget", widget_for(spec))
        kwargs.setdefault("default", form_default(spec))
        super().__init__(**kwargs)
        if spec.required:
            self.flags.required = True  # the form marks it with *
        self._parse_error: str | None = None

    def process_formdata(self, valuelist: list[Any]) -> None:
        raw = valuelist[0] if valuelist else None
        self._parse_error = None
        try:
            # a form's date-time is wall-clock time in the app's zone (stored UTC)
            self.data = parse_input(raw, self.spec, zone=app_zone())
        except CellError as exc:
            self.data = None
            self._parse_error = gettext(exc.message, **exc.params)

    def pre_validate(self, form: Any) -> None:
        if self.keep_masked is not None:
            self.keep_masked(form, self)  # a masked value sent back unchanged: keep it
        if self._parse_error:
            raise validators.StopValidation(self._parse_error)
        if self.data is None and self.spec.required:
            raise validators.StopValidation(gettext(N_("This field is required.")))
        if self.data is not None:
            reasons = check_value(self.spec, self.data)
            if reasons:
                raise validators.StopValidation(reasons[0])

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0] or "")
        return display_value(self.spec, self.data)

    def choices(self) -> list[tuple[str, str]]:
        """Options of a select (enum, boolean): key and label in the reader's language."""
        lang = current_lang()
        if self.spec.type == "boolean":
            options = [("true", gettext(N_("Yes"))), ("false", gettext(N_("No")))]
        else:
            options = [(c.key, c.label.get(lang)) for c in self.spec.choices]
        if not self.spec.required:
            options.insert(0, ("", "—"))
        return options


def widget_for(spec: FieldSpec) -> Any:
    if spec.type in ("enum", "boolean"):
        return ChoiceWidget()
    if spec.type == "text":
        return AreaWidget()
    if spec.type == "date":
        return InputWidget("date")
    if spec.type == "datetime":
        return InputWidget("datetime-local", step="60")
    if spec.type in ("integer", "decimal"):
        return InputWidget("text", inputmode="decimal")
    if spec.type == "email":
        return InputWidget("email")
    if spec.type == "phone":
        return InputWidget("tel")
    if spec.type == "url":
        return InputWidget("url")
    return InputWidget("text")


def form_default(spec: FieldSpec) -> Any:
    """The value a new form shows (callables run when the form is made)."""
    if spec.default is None or spec.default in ("$me", "$user"):
        return None
    if spec.type == "date" and spec.default == "today":
        return local_today
    if spec.type == "datetime" and spec.default == "now":
        return lambda: local_to_utc(local_now().replace(second=0, microsecond=0))
    return spec.default


def display_value(spec: FieldSpec, value: Any) -> str:
    """The text a form input shows for a stored value."""
    if value is None:
        return ""
    if spec.type == "boolean":
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return to_local(value).strftime("%Y-%m-%dT%H:%M")  # stored UTC, shown in the app zone
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
