"""Error pages (403, 404, 405, 429, 500) in the console's own layout and language.

Werkzeug's default pages are English, unstyled and have no way back; an
operator who follows a stale link should see where they are, in Chinese, with
a button home. Requests under /api/ keep getting JSON.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from app.i18n import N_, gettext

log = logging.getLogger(__name__)

# code -> (title, what to do next)
ERROR_TEXTS: dict[int, tuple[str, str]] = {
    400: (N_("Bad request"), N_("The request could not be understood. Go back and try again.")),
    403: (
        N_("No permission"),
        N_("Your role does not allow this page. Ask an administrator if you need it."),
    ),
    404: (
        N_("Page not found"),
        N_("This page does not exist or the record was deleted. Check the address or go back."),
    ),
    405: (N_("Not allowed"), N_("This page cannot be used this way. Go back and try again.")),
    429: (N_("Too many requests"), N_("You sent too many requests. Wait a minute and try again.")),
    500: (
        N_("Something went wrong"),
        N_(
            "The server could not finish this request. Try again; if it keeps happening, "
            "tell your administrator the time it happened."
        ),
    ),
}


def error_response(code: int) -> tuple[Any, int]:
    """Render the page (or JSON under /api/) for HTTP status `code`."""
    title, hint = ERROR_TEXTS.get(code, ERROR_TEXTS[500])
    if request.path.startswith("/api/"):
        return jsonify(message=gettext(title), code=code), code
    appbuilder = getattr(current_app, "appbuilder", None)
    body = render_template(
        "errors/error.html",
        code=code,
        title=gettext(title),
        hint=gettext(hint),
        back_url=request.referrer if request.referrer and request.referrer != request.url else None,
        base_template=appbuilder.base_template if appbuilder else "appbuilder/baselayout.html",
        appbuilder=appbuilder,
    )
    return body, code


def install_error_pages(app: Flask) -> None:
    """Route the HTTP errors the console can raise to the translated page."""

    def handle_http(error: HTTPException) -> Any:
        code = error.code or 500
        if code not in ERROR_TEXTS:
            return error
        body, status = error_response(code)
        response = current_app.make_response((body, status))
        if code == 429 and error.response is not None:
            retry = error.response.headers.get("Retry-After")
            if retry:
                response.headers["Retry-After"] = retry
        if code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    def handle_crash(error: InternalServerError) -> Any:
        log.error("Unhandled error on %s", request.path, exc_info=error.original_exception)
        return error_response(500)

    for code in ERROR_TEXTS:
        if code != 500:
            app.register_error_handler(code, handle_http)
    app.register_error_handler(500, handle_crash)
