"""List parameters a client can send, made safe before any view reads them.

FAB's list pages read `page_<View>`, `psize_<View>`, `_oc_<View>`/`_od_<View>`
and `_flt_<n>_<column>` straight from the query string (`int()` on text is a
500), and the REST API decodes its rison `q` with a parser that recurses
without bound on malformed input. This module runs before every request and
drops what no view could use, clamps page sizes to the ones FAB offers, and
answers an undecodable `q` with 400, so the views stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

import prison
from flask import Flask, Response, jsonify, request
from werkzeug.datastructures import ImmutableMultiDict

from app.i18n import N_, gettext

PAGE_SIZES = (10, 20, 50, 100)  # what FAB's page-size menu offers; the last is the most
MAX_PAGE = 100_000
MAX_RISON_LENGTH = 8_000
_PAGE = re.compile(r"page_(.*)")
_PAGE_SIZE = re.compile(r"psize_(.*)")
_ORDER_COLUMN = re.compile(r"_oc_(.*)")
_FILTER = re.compile(r"_flt_(\d)_(.*)")  # FAB's own pattern (urltools.get_filter_args)


def page_number(value: str) -> str | None:
    """Return a valid page number (0-based) as text, or None to drop it."""
    try:
        page = int(value)
    except ValueError:
        return None
    return str(page) if 0 <= page <= MAX_PAGE else None


def page_size(value: str) -> str | None:
    """Return the smallest offered page size that holds `value` rows, or None to drop it."""
    try:
        size = int(value)
    except ValueError:
        return None
    if size <= 0:
        return None
    return str(next((offered for offered in PAGE_SIZES if offered >= size), PAGE_SIZES[-1]))


class ListArgs:
    """Checks list parameters against the app's views (their order columns and filters).

    The views are looked up on first use, when every hook has added its own.
    """

    def __init__(self, appbuilder: Any) -> None:
        self.appbuilder = appbuilder
        self._by_class: dict[str, Any] | None = None
        self._by_endpoint: dict[str, Any] = {}

    def _views(self) -> dict[str, Any]:
        if self._by_class is None:
            views = self.appbuilder.baseviews
            self._by_endpoint = {getattr(view, "endpoint", ""): view for view in views}
            self._by_class = {type(view).__name__: view for view in views}
        return self._by_class

    def order_ok(self, view_name: str, column: str) -> bool:
        """Whether `column` is one the view `view_name` can order by."""
        view = self._views().get(view_name)
        return column in (getattr(view, "order_columns", None) or ())

    def filter_ok(self, index: int, column: str) -> bool:
        """Whether the current view offers filter number `index` on `column`."""
        self._views()
        filters = getattr(self._by_endpoint.get(request.blueprint or ""), "_filters", None)
        if filters is None:
            # /<entity>/export, /<entity>/charts/...: the entity's list filters apply
            from app.state import state

            entity_view = state().views.get(request.path.strip("/").split("/")[0])
            filters = getattr(entity_view, "_filters", None)
        if filters is None:
            return False
        # FAB indexes every column's filters (add/edit prefill uses any column).
        offered = getattr(filters, "_all_filters", None) or filters.get_search_filters()
        return index < len(offered.get(column) or ())

    def clean(self, args: ImmutableMultiDict) -> ImmutableMultiDict | None:
        """Return `args` without unusable list parameters, or None if all were fine."""
        cleaned: list[tuple[str, str]] = []
        changed = False
        for key, value in args.items(multi=True):
            kept = self.clean_value(key, value)
            changed = changed or kept != value
            if kept is not None:
                cleaned.append((key, kept))
        return ImmutableMultiDict(cleaned) if changed else None

    def clean_value(self, key: str, value: str) -> str | None:
        """The value FAB may read for `key` (possibly clamped), or None to drop the parameter.

        Patterns are searched anywhere in the key, as FAB does, so a key that
        FAB would read twice (`_flt_0_page_x`) passes every check it would meet.
        """
        if _PAGE.search(key) and page_number(value) is None:
            return None
        if _PAGE_SIZE.search(key):
            value = page_size(value)  # type: ignore[assignment]
            if value is None:
                return None
        if (match := _ORDER_COLUMN.search(key)) and not self.order_ok(match.group(1), value):
            return None
        match = _FILTER.search(key)
        if match and not self.filter_ok(int(match.group(1)), match.group(2)):
            return None
        return value


def rison_error() -> Response | None:
    """A 400 for an API `q` that is not rison FAB can decode; None when it is fine."""
    q = request.args.get("q")
    if q is None:
        return None
    try:
        if len(q) > MAX_RISON_LENGTH:
            raise ValueError("too long")
        prison.loads(q)
    except (Exception, RecursionError):  # noqa: BLE001 - any decoding failure is the client's
        response = jsonify(message=gettext(N_("The q parameter is not valid rison.")))
        response.status_code = 400
        return response
    return None


def init_params(app: Flask, appbuilder: Any) -> None:
    """Init hook: sanitise list parameters before every view."""
    list_args = ListArgs(appbuilder)

    @app.before_request
    def _sanitise_list_args() -> Response | None:
        if request.path.startswith("/static"):
            return None
        if request.path.startswith("/api/"):
            return rison_error()
        cleaned = list_args.clean(request.args)
        if cleaned is not None:
            # Request.args is a cached property: this replaces what views will read.
            request.args = cleaned  # type: ignore[misc]
        return None
