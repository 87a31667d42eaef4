"""Export an entity's rows (the list's filters, search and order) to CSV or XLSX.

Rows stream from the database in batches (`yield_per`), so memory stays flat
whatever the size. CSV is UTF-8 with a BOM so Excel opens Chinese correctly;
XLSX uses openpyxl's write-only mode. Headers are in the reader's language,
enums show their labels, relations their titles; row rules and masking apply;
text that Excel would run as a formula is neutralised.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context
from sqlalchemy.orm import Session

from app.audit import record_event
from app.i18n import N_, current_lang, gettext
from app.io.importer import neutralise
from app.records import records
from app.records.display import to_local
from app.schema.spec import EntitySpec, FieldSpec
from app.state import state

BATCH = 1000
TITLE_CACHE = 50_000  # titles of related records kept per target during one export


def export_fields(entity: EntitySpec) -> list[FieldSpec]:
    """Return the fields an export (and an import template) carries, in schema order."""
    return list(entity.fields)


def headers(entity: EntitySpec, lang: str | None = None) -> list[str]:
    """Return the export headers in `lang` (default: the reader's language)."""
    lang = lang or current_lang()
    return [f.label.get(lang) for f in export_fields(entity)]


@contextlib.contextmanager
def _list_request(args: dict[str, Any] | None) -> Iterator[None]:
    """Give FAB's filter parsing a request with the list's query args (jobs, CLI)."""
    if args is None or has_request_context():
        yield
        return
    with current_app.test_request_context("/", query_string=args):
        yield


def build_query(session: Session, entity_name: str, use_list_args: bool = True,
                eager: bool = True) -> Any:
    """Return the ORM query of the list page: its filters, search (`q`), order, row rule.

    Reads the current request's args (`_flt_*`, `q`, `_oc_*`/`_od_*`), through the
    entity's ModelView, so the export matches exactly what the list showed.
    """
    from flask_appbuilder.urltools import get_filter_args, get_order_args

    st = state()
    model = st.models.model(entity_name)
    view = st.views.get(entity_name)
    query = session.query(model)
    if view is not None:
        order_column, order_direction = "", ""
        if use_list_args and has_request_context():
            # A private copy: the view's Filters object is shared by every request.
            filters = view._filters.copy()
            filters.search_columns = view._filters.search_columns
            filters._search_filters = view._filters.get_search_filters()
            get_filter_args(filters)
            order = get_order_args().get(view.__class__.__name__)
            if order:
                order_column, order_direction = order
        else:
            filters = view._filters.copy()
            filters.clear_filters()
        joined = filters.get_joined_filters(view._base_filters)
        if not order_column and view.base_order:
            order_column, order_direction = view.base_order
        query = view.datamodel.apply_all(query, joined, order_column, order_direction)
    service = records(entity_name)
    service.require("export")
    query = service.scoped(query)
    return query.options(*service.eager_options()) if eager else query


def cell_value(f: FieldSpec, obj: Any, lang: str, masked: Any, for_csv: bool) -> Any:
    """Return what a reader sees for field `f` of `obj` (label, title, masked text).

    `masked` is the record service of a reader who may not see sensitive values
    in clear (it masks them), or None.
    """
    value = getattr(obj, f.name)
    if f.is_many:
        value = ", ".join(str(x) for x in value)
    elif f.type == "user":
        value = value.username if value is not None else None
    elif f.is_relation:
        value = str(value) if value is not None else None
    return shown_value(f, value, lang, masked, for_csv)


def shown_value(f: FieldSpec, value: Any, lang: str, masked: Any, for_csv: bool) -> Any:
    """`cell_value` once relations are text: labels, yes/no, masking, CSV text, no formulas."""
    if f.type == "enum":
        value = f.choice_label(value, lang) if value is not None else None
    elif f.type == "boolean":
        value = None if value is None else gettext(N_("Yes")) if value else gettext(N_("No"))
    elif isinstance(value, dt.datetime):  # as on screen: the app's time zone, to the minute
        value = to_local(value).replace(second=0, microsecond=0)
    if masked is not None and f.sensitive and value not in (None, ""):
        value = masked.show(f, value)
    if value is None:
        return ""
    if for_csv:
        if isinstance(value, (dt.date, dt.datetime)):
            return (value.isoformat(sep=" ", timespec="minutes") if isinstance(value, dt.datetime)
                    else value.isoformat())
        if isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
            return str(value)
    return neutralise(value) if isinstance(value, str) else value


def _among(column: Any, values: list[Any]) -> Any:
    """`column IN (values)`; on PostgreSQL one array parameter (`= ANY(:values)`), which
    psycopg sends without parsing a thousand placeholders."""
    if state().db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


class _Titles:
    """Titles of the records an export batch refers to: one SELECT per relation and batch.

    A title is what the ORM path printed (`str(record)`, a user's username); the
    last TITLE_CACHE titles of each target are kept, so repeated owners cost nothing.
    """

    def __init__(self, session: Session, entity: EntitySpec) -> None:
        st = state()
        self.session, self.st, self.entity = session, st, entity
        self.cache: dict[str, dict[Any, str]] = {}

    def lookup(self, f: FieldSpec, ids: set[Any]) -> dict[Any, str]:
        known = self.cache.setdefault(f.type if f.type == "user" else str(f.to), {})
        missing = sorted(i for i in ids if i is not None and i not in known)
        if len(known) + len(missing) > TITLE_CACHE:
            known.clear()
            missing = sorted(i for i in ids if i is not None)
        for part in (missing[i:i + 500] for i in range(0, len(missing), 500)):
            if f.type == "user":
                users = self.st.models.metadata.tables["ab_user"]
                known.update(self.session.execute(
                    sa.select(users.c.id, users.c.username).where(_among(users.c.id, part))
                ).all())
                continue
            model = self.st.models.model(str(f.to))
            for obj in self.session.query(model).filter(_among(model.id, part)):
                known[obj.id] = str(obj)
        return known

    def many(self, f: FieldSpec, ids: list[Any]) -> dict[Any, str]:
        """{record id: the titles of its linked records, joined} for a many-to-many field."""
        assoc = self.st.models.m2m_tables[(self.entity.name, f.name)]
        left, right = list(assoc.c)
        pairs = self.session.execute(
            sa.select(left, right).where(_among(left, ids)).order_by(left, right)).all()
        titles = self.lookup(f, {p[1] for p in pairs})
        joined: dict[Any, list[str]] = {}
        for owner, target in pairs:
            joined.setdefault(owner, []).append(titles.get(target, ""))
        return {owner: ", ".join(names) for owner, names in joined.items()}


TEXT_TYPES = frozenset({"string", "text", "email", "phone", "url"})
NUMBER_TYPES = frozenset({"integer", "decimal", "float"})


def _text_cell(value: Any) -> Any:
    return "" if value is None else neutralise(value) if isinstance(value, str) else value


def _number_text(value: Any) -> Any:
    return "" if value is None else str(value) if isinstance(value, (int, Decimal, float)) \
        and not isinstance(value, bool) else value


def _number_cell(value: Any) -> Any:
    return "" if value is None else value


def cell_function(f: FieldSpec, lang: str, masked: Any, for_csv: bool) -> Callable[[Any], Any]:
    """`shown_value` for one field, settled once per export: the common cases (text and
    numbers nobody masks) skip its per-cell type tests; every other field calls it."""
    if not (masked is not None and f.sensitive):
        if f.type in TEXT_TYPES:
            return _text_cell
        if f.type in NUMBER_TYPES:
            return _number_text if for_csv else _number_cell
        if f.type == "enum":
            labels = {c.key: neutralise(f.choice_label(c.key, lang)) for c in f.choices}
            return lambda value: "" if value is None else labels.get(value) or shown_value(
                f, value, lang, masked, for_csv)

    def cell(value: Any) -> Any:
        return shown_value(f, value, lang, masked, for_csv)

    return cell


Plan = list[tuple[FieldSpec, str, int, Callable[[Any], Any]]]


def _plan(fields: list[FieldSpec], columns: list[str], lang: str, masked: Any,
          for_csv: bool) -> Plan:
    """Per field: how its value is found in a row (the position of its column, its foreign
    key's, or the id's for a many-to-many) and how it is shown."""
    plan = []
    for f in fields:
        kind = "many" if f.is_many else "key" if f.is_foreign_key else "column"
        position = columns.index("id" if f.is_many else f.column_name)
        plan.append((f, kind, position, cell_function(f, lang, masked, for_csv)))
    return plan


def _rows_of_batch(batch: list[Any], plan: Plan, id_at: int, titles: _Titles
                   ) -> Iterator[list[Any]]:
    """Turn a batch of Core rows into export rows (relations' titles looked up at once)."""
    names: dict[int, dict[Any, str]] = {}
    ids = [row[id_at] for row in batch]
    for f, kind, at, _cell in plan:
        if kind == "many":
            names[at] = titles.many(f, ids)
        elif kind == "key":
            names[at] = titles.lookup(f, {row[at] for row in batch})
    for row in batch:
        cells = []
        for _f, kind, at, cell in plan:
            if kind == "column":
                cells.append(cell(row[at]))
            elif kind == "key":
                ref = row[at]
                cells.append(cell(None if ref is None else names[at].get(ref)))
            else:
                cells.append(cell(names[at].get(row[at], "")))
        yield cells


def iter_rows(entity_name: str, args: dict[str, Any] | None = None, lang: str | None = None,
              for_csv: bool = True) -> Iterator[list[Any]]:
    """Return an iterator over the export rows (lists of cell values) of the list.

    Who may see what, and the query, are settled here, at once (inside the
    request); the rows are then fetched batch by batch as the iterator is read,
    which may be after the view has returned (a streamed response). They are
    Core rows from a server-side cursor (`yield_per`), not ORM objects; the
    titles of related records are looked up once per batch.
    """
    st = state()
    entity = st.spec.entity(entity_name)
    lang = lang or current_lang()
    fields = export_fields(entity)
    session = Session(bind=st.db.engine)
    try:
        with _list_request(args):
            service = records(entity_name)
            masked = None if service.sees_sensitive else service
            table = st.models.table(entity_name)
            query = build_query(session, entity_name, use_list_args=True, eager=False)
            query = query.with_entities(*table.c).yield_per(BATCH)
    except Exception:
        session.close()
        raise

    def rows() -> Iterator[list[Any]]:
        # Titles come through a second connection: on MariaDB (pymysql) a statement
        # on the streaming connection would end its server-side cursor.
        lookups = Session(bind=st.db.engine)
        titles = _Titles(lookups, entity)
        try:
            columns = [c.name for c in table.c]
            plan, id_at = _plan(fields, columns, lang, masked, for_csv), columns.index("id")
            batch: list[Any] = []
            for row in query:
                batch.append(row)
                if len(batch) >= BATCH:
                    yield from _rows_of_batch(batch, plan, id_at, titles)
                    batch = []
            if batch:
                yield from _rows_of_batch(batch, plan, id_at, titles)
        finally:
            lookups.close()
            session.close()

    return rows()


LIST_ARG_PREFIXES = ("_flt_", "_oc_", "_od_", "f_")  # f_: the grid's panel (f_id: selected)


def csv_chunks(head: list[str], rows: Iterator[list[Any]]) -> Iterator[tuple[bytes, int]]:
    """Yield the CSV bytes (UTF-8 with BOM, for Excel) batch by batch, with the rows so far."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(head)
    count = 0
    for count, row in enumerate(rows, 1):
        writer.writerow(row)
        if count % BATCH == 0:
            yield buffer.getvalue().encode("utf-8"), count
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8"), count


def write_export(entity: str, path: str | Path, fmt: str, args: dict[str, Any] | None = None,
                 lang: str | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
    """Write the export of the list (`args`, or the current request's) to `path`; return rows.

    Not audited here: the caller records the export with `audit_export`.
    """
    lang = lang or current_lang()
    head = headers(state().spec.entity(entity), lang)
    rows = iter_rows(entity, args, lang, for_csv=fmt != "xlsx")
    count = 0
    if fmt == "xlsx":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(state().spec.entity(entity).label.get(lang)[:31])
        sheet.append(head)
        for count, row in enumerate(rows, 1):
            sheet.append(row)
            if progress is not None and count % 10000 == 0:
                progress(count)
        workbook.save(path)
        return count
    with open(path, "wb") as fh:
        for chunk, count in csv_chunks(head, rows):
            fh.write(chunk)
            if progress is not None:
                progress(count)
    return count


def export_file(entity_name: str, path: str | Path, fmt: str | None = None,
                args: dict[str, Any] | None = None, lang: str | None = None,
                progress: Callable[[int], None] | None = None) -> int:
    """Write the export of `entity_name` to `path` (csv or xlsx), audit it; return the rows."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "csv").lower()
    count = write_export(entity_name, path, fmt, args, lang, progress)
    audit_export(entity_name, fmt, count, args, path.name)
    return count


def count_rows(entity_name: str) -> int:
    """Return how many rows the current list (request args) would export."""
    session = Session(bind=state().db.engine)
    try:
        return build_query(session, entity_name).order_by(None).count()
    finally:
        session.close()


def list_args(args: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Return the list's filters, search and order (`_flt_*`, `q`, `_oc_*`, `_od_*`) of `args`."""
    result = {}
    for key in sorted(args or {}):
        if key == "q" or key.startswith(LIST_ARG_PREFIXES):
            value = args[key]  # type: ignore[index]
            result[key] = [str(v) for v in value] if isinstance(value, list | tuple) \
                else [str(value)]
    return result


def audit_export(entity: str, fmt: str, rows: int, args: Mapping[str, Any] | None,
                 file: str | None = None, complete: bool = True) -> None:
    """Record the audit `export` entry of one export (`complete=False`: the download broke off)."""
    detail: dict[str, Any] = {"format": fmt, "rows": rows, "filters": list_args(args)}
    if file:
        detail["file"] = file
    if not complete:
        detail["complete"] = False
    record_event("export", entity=entity, title=file, detail=detail)


def _example(f: FieldSpec, lang: str) -> Any:
    """The template's example cell of field `f`."""
    if f.type == "enum":
        return f.choices[0].label.get(lang) if f.choices else ""
    fixed = {"boolean": gettext(N_("Yes")), "date": "2024-03-05", "datetime": "2024-03-05 14:30",
             "email": "name@example.com", "phone": "13800138000", "url": "https://example.com"}
    if f.type in fixed:
        return fixed[f.type]
    if f.type in ("integer", "decimal"):
        return str(f.min if f.min is not None else 1)
    if f.is_relation or f.type == "user":
        return ""
    return f.label.get(lang)


def _accepted(f: FieldSpec, lang: str) -> str:
    """The template's 'accepted values' text of field `f`."""
    if f.type == "enum":
        return " / ".join(c.label.get(lang) for c in f.choices)
    if f.type == "boolean":
        return "是/否, yes/no, true/false, 1/0"
    if f.is_many:
        return gettext(N_("Titles separated by commas"))
    if f.is_relation:
        return gettext(N_("Title or ID of the record"))
    if f.type in ("date", "datetime"):
        return "2024-03-05, 2024/3/5" + (", 2024-03-05 14:30" if f.type == "datetime" else "")
    return ""


def template_rows(entity: EntitySpec, lang: str) -> tuple[list[str], list[Any], list[list[str]]]:
    """Return (headers, an example row, choices sheet rows) of the import template."""
    example = [_example(f, lang) for f in export_fields(entity)]
    choices = [[gettext(N_("Field")), gettext(N_("Required")), gettext(N_("Accepted values"))]]
    for f in export_fields(entity):
        choices.append([f.label.get(lang),
                        gettext(N_("Yes")) if f.required else "", _accepted(f, lang)])
    return headers(entity, lang), example, choices


def write_template(entity_name: str, out: Any, fmt: str = "xlsx", lang: str | None = None) -> None:
    """Write the import template (headers, an example row; choices sheet in XLSX) to `out`."""
    entity = state().spec.entity(entity_name)
    lang = lang or current_lang()
    head, example, choices = template_rows(entity, lang)
    if fmt == "xlsx":
        from openpyxl import Workbook

        workbook = Workbook()
        sheet = workbook.active
        sheet.title = entity.label.get(lang)[:31]
        sheet.append(head)
        sheet.append(example)
        help_sheet = workbook.create_sheet(gettext(N_("Choices"))[:31])
        for row in choices:
            help_sheet.append(row)
        workbook.save(out)
        return
    text = io.StringIO()
    text.write("\ufeff")
    writer = csv.writer(text)
    writer.writerow(head)
    writer.writerow(example)
    out.write(text.getvalue().encode("utf-8"))
