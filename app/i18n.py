"""Translation helpers shared by every layer.

`N_` marks a message for extraction without translating it (the text is
translated later, when it is shown, in the reader's language). `label_text`
returns a schema label in the current language.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, has_request_context, session
from flask.globals import _cv_app
from flask_babel import get_locale, get_translations

SUPPORTED_LOCALES = ("zh", "en")


def N_(message: str) -> str:
    """Mark `message` for extraction; return it untranslated."""
    return message


def gettext(message: str, **params: Any) -> str:
    """Translate `message` in the current locale and fill in `params`."""
    text = request_translations().ugettext(message)
    return text % params if params else text


def request_translations() -> Any:
    """The translations of the current locale, looked up once per locale and app context.

    Flask-Babel's `get_translations()` resolves the locale, its identifier and
    the domain's cache on every call; a list page calls it ~400 times from its
    templates (a quarter of the page's time). The result is kept on `g` next to
    the locale object it was made for, so `force_locale` and `refresh` (which
    replace that object) still switch languages.
    """
    ctx = _cv_app.get(None)
    if ctx is None:
        return get_translations()
    namespace = ctx.g.__dict__.get("_flask_babel")
    locale = getattr(namespace, "babel_locale", None)
    cached = ctx.g.__dict__.get("_sd_translations")
    if locale is not None and cached is not None and cached[0] is locale:
        return cached[1]
    translations = get_translations()
    locale = getattr(ctx.g.__dict__.get("_flask_babel"), "babel_locale", None)
    if locale is not None:
        ctx.g._sd_translations = (locale, translations)
    return translations


def install_template_gettext(app: Flask) -> None:
    """Give the templates' `_()`/`gettext` the per-request translations (Flask-Babel's
    callables, minus their per-call lookups)."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )


def current_lang() -> str:
    """Return 'zh' or 'en' for the current request (or app default)."""
    ctx = _cv_app.get(None)
    if ctx is None:  # no app context, e.g. a plain unit test of the spec
        return "en"
    locale = getattr(ctx.g.__dict__.get("_flask_babel"), "babel_locale", None)
    if locale is None:
        try:
            locale = get_locale()
        except Exception:  # noqa: BLE001 - an app without Babel (a bare test app)
            locale = None
    if locale is None:
        return "en"
    return "zh" if locale.language == "zh" else "en"


def chosen_lang() -> str | None:
    """Return the language the user picked with /lang/<code>, if any."""
    if has_request_context():
        value = session.get("locale")
        if value in SUPPORTED_LOCALES:
            return value
    return None
