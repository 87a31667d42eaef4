"""Translation helpers shared by every layer.

`N_` marks a message for extraction without translating it (the text is
translated later, when it is shown, in the reader's language). `label_text`
returns a schema label in the current language.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context, session
from flask_babel import get_locale
from flask_babel import gettext as _gettext

SUPPORTED_LOCALES = ("zh", "en")


def N_(message: str) -> str:
    """Mark `message` for extraction; return it untranslated."""
    return message


def gettext(message: str, **params: Any) -> str:
    """Translate `message` in the current locale and fill in `params`."""
    return _gettext(message, **params)


def current_lang() -> str:
    """Return 'zh' or 'en' for the current request (or app default)."""
    try:
        locale = get_locale()
    except Exception:  # no app context, e.g. a plain unit test of the spec
        locale = None
    if locale is None:
        return "en"
    return "zh" if str(locale).lower().startswith("zh") else "en"


def chosen_lang() -> str | None:
    """Return the language the user picked with /lang/<code>, if any."""
    if has_request_context():
        value = session.get("locale")
        if value in SUPPORTED_LOCALES:
            return value
    return None
