"""Chart data in SQL: one GROUP BY query per chart, labelled in the reader's language.

Rows never travel to Python: the database groups and measures, and Python only
labels the groups (enum choices, Yes/No, relation titles, period names) and, on
time series, inserts the periods that have no rows. Every query carries the
user's reachable rows (`app.records`) and, on the chart page, the
same filters as the entity's list (`q` and FAB's `_flt_*` arguments).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app.i18n import N_, current_lang, gettext
from app.records import Forbidden, records
from app.records.display import local_sql
from app.schema.spec import DATE_TYPES, ChartSpec, EntitySpec, FieldSpec, Measure
from app.state import state

# Categories shown for a relation or free-valued group (largest first); enum and
# boolean groups are bounded by the schema and always shown whole.
MAX_CATEGORIES = 30
# A time series never shows more periods than this (the most recent are kept).
MAX_PERIODS = 1000
# Reminder lists show at most this many records per list.
MAX_REMINDERS = 20

SYSTEM_DATE_COLUMNS = ("created_at", "updated_at")


@dataclass
class ChartData:
    """A chart's series: one label and one value per group, in display order."""

    name: str
    type: str
    title: str
    measure_label: str
    labels: list[str] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    time_series: bool = False
    truncated: bool = False

    def as_json(self) -> dict[str, Any]:
        """Return the chart as the JSON the chart script renders."""
        return {
            "name": self.name,
            "type": self.type,
            "title": self.title,
            "measure": self.measure_label,
            "labels": self.labels,
            "values": self.values,
            "time_series": self.time_series,
            "truncated": self.truncated,
        }


@dataclass
class ReminderList:
    """Records whose `next_*`/`due_*` date is today or already past."""

    entity: str
    entity_label: str
    field: str
    field_label: str
    overdue_count: int
    today_count: int
    records: list[dict[str, Any]]


# -- the base query: filters and row rule ----------------------------------


def list_filters(entity_name: str) -> Any | None:
    """Return the list's active filters for this request (`q`, `_flt_*`), or None.

    A fresh `Filters` object is built per call: the view's own `_filters` is
    shared by every request and FAB mutates it while rendering a list.
    """
    from flask import has_request_context
    from flask_appbuilder.urltools import get_filter_args

    view = state().views.get(entity_name)
    if view is None or not has_request_context():
        return None
    filters = view.datamodel.get_filters(view.search_columns)
    get_filter_args(filters)
    service = records(entity_name)
    allowed = view.datamodel.get_filters(view.search_columns)
    for flt, value in zip(filters.filters, filters.values, strict=True):
        if service.may_filter_column(flt.column_name):  # no oracle on a field the user can't see
            allowed._add_filter(flt, value)
    filters = allowed
    base = view.datamodel.get_filters()
    for flt, value in zip(view._base_filters.filters, view._base_filters.values, strict=True):
        if type(flt).__name__ == "FilterRowRule":  # applied once, by apply_scope
            continue
        base._add_filter(flt, value)
    return filters.get_joined_filters(base)


def apply_scope(stmt: Any, entity_name: str, filters: Any | None) -> Any:
    """Return `stmt` narrowed by the list filters and the user's reachable rows."""
    if filters is not None:
        stmt = filters.apply_all(stmt)
    service = records(entity_name)
    service.require("read")
    return service.scoped(stmt)


# -- measures and groups ---------------------------------------------------


def chart_allowed(entity_name: str, chart: ChartSpec) -> bool:
    """Whether the user may see `chart` (it groups and measures only fields they see)."""
    try:
        refuse_hidden(entity_name, chart.group_by, chart.measure)
    except Forbidden:
        return False
    return True


def refuse_hidden(entity_name: str, group_by: str | None, measure: Measure) -> None:
    """Refuse to group or measure by a field the record service hides from this user."""
    service = records(entity_name)
    for name in (group_by, measure.field):
        if name and not service.may_group(name):
            raise Forbidden(gettext(N_("This chart uses a field you may not see.")))


def measure_expression(model: type, measure: Measure) -> Any:
    """Return the SQL aggregate of a measure (count(*) by default)."""
    if measure.func == "count" or measure.field is None:
        return sa.func.count()
    column = getattr(model, measure.field)
    return getattr(sa.func, measure.func)(column)


def measure_label(entity: EntitySpec, measure: Measure, lang: str) -> str:
    """Return how a measure is named in the legend and tooltip."""
    if measure.func == "count" or measure.field is None:
        return gettext(N_("Count"))
    name = entity.field(measure.field).label.get(lang)
    words = {
        "sum": N_("Sum of %(field)s"),
        "avg": N_("Average %(field)s"),
        "min": N_("Minimum %(field)s"),
        "max": N_("Maximum %(field)s"),
    }
    return gettext(words[measure.func], field=name)


def to_number(value: Any) -> float | None:
    """Return a JSON-friendly number (Decimal and int become float, 2 decimals)."""
    if value is None:
        return None
    if isinstance(value, Decimal | int):
        value = float(value)
    return round(float(value), 2)


def period_start(column: Any, period: str, dialect: str) -> Any:
    """Return SQL for the first day of the column's `period`, as a date or 'YYYY-MM-DD'.

    Constants are rendered inline (`literal_column`) so that the SELECT and the
    GROUP BY are the same SQL text: PostgreSQL refuses two different bound
    parameters there. Weeks start on Monday.
    """
    if dialect == "postgresql":
        unit = sa.literal_column(f"'{period}'")
        return sa.cast(sa.func.date_trunc(unit, sa.cast(column, sa.DateTime)), sa.Date)
    if dialect == "mysql":
        day = sa.func.date(column)
        if period == "day":
            return day
        if period == "week":
            return sa.func.subdate(day, sa.func.weekday(column))
        if period == "month":
            return sa.func.subdate(day, sa.func.dayofmonth(column) - sa.literal_column("1"))
        year_start = sa.func.makedate(sa.func.year(column), sa.literal_column("1"))
        if period == "year":
            return year_start
        months = (sa.func.quarter(column) - sa.literal_column("1")) * sa.literal_column("3")
        return sa.func.timestampadd(sa.literal_column("MONTH"), months, year_start)
    if dialect == "sqlite":
        if period == "day":
            return sa.func.date(column)
        if period == "week":
            return sa.func.date(
                column, sa.literal_column("'-6 days'"), sa.literal_column("'weekday 1'")
            )
        if period == "month":
            return sa.func.strftime(sa.literal_column("'%Y-%m-01'"), column)
        if period == "year":
            return sa.func.strftime(sa.literal_column("'%Y-01-01'"), column)
        month = sa.func.strftime(sa.literal_column("'%m'"), column)
        quarter_month = sa.case(
            (month <= sa.literal_column("'03'"), sa.literal_column("'01'")),
            (month <= sa.literal_column("'06'"), sa.literal_column("'04'")),
            (month <= sa.literal_column("'09'"), sa.literal_column("'07'")),
            else_=sa.literal_column("'10'"),
        )
        year = sa.func.strftime(sa.literal_column("'%Y'"), column, type_=sa.String)
        return (
            year.concat(sa.literal_column("'-'"))
            .concat(quarter_month)
            .concat(sa.literal_column("'-01'"))
        )
    raise ValueError(f"date truncation is not supported on {dialect}")


def as_date(value: Any) -> dt.date:
    """Return a period start from the database (date, datetime or ISO string) as a date."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def step_period(day: dt.date, period: str, steps: int = 1) -> dt.date:
    """Return the first day of the period `steps` periods after (or before) `day`'s."""
    if period == "day":
        return day + dt.timedelta(days=steps)
    if period == "week":
        return day + dt.timedelta(days=7 * steps)
    months = {"month": 1, "quarter": 3, "year": 12}[period] * steps
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def period_label(day: dt.date, period: str) -> str:
    """Return the name of the period starting on `day` (2024-03, 2024 Q1, ...)."""
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return gettext(N_("%(year)s week %(week)s"), year=year, week=week)
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    if period == "quarter":
        return gettext(N_("%(year)s Q%(quarter)s"), year=day.year, quarter=(day.month - 1) // 3 + 1)
    return str(day.year)


def fill_periods(
    found: dict[dt.date, float | None], period: str, empty: float | None
) -> tuple[list[dt.date], list[float | None], bool]:
    """Return every period from the first to the last found, `empty` where none was.

    At most MAX_PERIODS periods are returned (the most recent); the flag says
    whether older ones were left out.
    """
    if not found:
        return [], [], False
    first, last = min(found), max(found)
    days: list[dt.date] = []
    day = last
    while day >= first and len(days) <= MAX_PERIODS:  # newest first, so a stray
        days.append(day)  # far-off date cannot make the walk long
        try:
            day = step_period(day, period, -1)
        except (OverflowError, ValueError):  # before year 1
            break
    truncated = len(days) > MAX_PERIODS
    days = days[:MAX_PERIODS][::-1]
    return days, [found.get(d, empty) for d in days], truncated


def empty_value(measure: Measure) -> float | None:
    """Return what a period without rows shows: 0 for counts and sums, a gap otherwise.

    An average, minimum or maximum over no rows does not exist; showing 0 would
    draw a value nobody recorded, so the line breaks there instead.
    """
    return 0 if measure.func in ("count", "sum") or measure.field is None else None


def group_field(entity: EntitySpec, name: str) -> FieldSpec:
    """Return the spec of a group_by field, system date columns included."""
    if name in SYSTEM_DATE_COLUMNS:
        from app.schema.spec import Label

        label = Label(en=name.replace("_", " ").capitalize(), zh=name)
        return FieldSpec(name=name, type="datetime", label=label)
    return entity.field(name)


def relation_title(target_model: Any, target: EntitySpec | None) -> Any:
    """Return the column that names a related record (its `title` field, else id)."""
    if target is not None and target.title and target.has_field(target.title):
        f = target.field(target.title)
        if not f.is_relation and f.type != "user" and not f.encrypted:
            return getattr(target_model, f.name)
    return target_model.id


# -- charts -----------------------------------------------------------------


def aggregate(entity_name: str, chart: ChartSpec, filters: Any | None = None) -> ChartData:
    """Return a chart's series from one GROUP BY query (a KPI gives one value)."""
    st = state()
    entity = st.spec.entity(entity_name)
    model = st.models.model(entity_name)
    lang = current_lang()
    data = ChartData(
        name=chart.name,
        type=chart.type,
        title=chart.label.get(lang),
        measure_label=measure_label(entity, chart.measure, lang),
    )
    refuse_hidden(entity_name, chart.group_by, chart.measure)
    measure = measure_expression(model, chart.measure).label("value")
    if chart.type == "kpi" or chart.group_by is None:
        stmt = apply_scope(sa.select(measure).select_from(model), entity_name, filters)
        value = st.db.session.execute(stmt).scalar()
        data.labels = [data.title]
        data.values = [to_number(value if value is not None else empty_value(chart.measure))]
        return data
    f = group_field(entity, chart.group_by)
    if f.type in DATE_TYPES:
        return time_series(data, entity_name, model, f, chart, measure, filters)
    return categories(data, entity_name, model, f, chart.measure, filters)


def time_series(
    data: ChartData,
    entity_name: str,
    model: type,
    f: FieldSpec,
    chart: ChartSpec,
    measure: Any,
    filters: Any | None,
) -> ChartData:
    """Fill `data` with one value per period, empty periods included."""
    st = state()
    period = chart.period or "month"
    column = getattr(model, f.name)
    dialect = st.db.engine.dialect.name
    local = local_sql(column, dialect) if f.type == "datetime" else column  # the app's zone
    key = period_start(local, period, dialect).label("key")
    stmt = sa.select(key, measure).select_from(model).where(column.is_not(None))
    stmt = apply_scope(stmt, entity_name, filters).group_by(key)
    empty = empty_value(chart.measure)
    rows = st.db.session.execute(stmt)
    found = {as_date(k): to_number(empty if v is None else v) for k, v in rows}
    days, values, truncated = fill_periods(found, period, empty)
    data.time_series = True
    data.truncated = truncated
    data.labels = [period_label(d, period) for d in days]
    data.values = values
    return data


def categories(
    data: ChartData,
    entity_name: str,
    model: type,
    f: FieldSpec,
    chart_measure: Measure,
    filters: Any | None,
) -> ChartData:
    """Fill `data` with one value per enum choice, Yes/No, related record or value."""
    st = state()
    measure = measure_expression(model, chart_measure).label("value")
    empty = empty_value(chart_measure)
    lang = current_lang()
    none_label = gettext(N_("(empty)"))
    if f.type == "relation" or f.type == "user":
        if f.type == "user":
            user_table = st.models.metadata.tables["ab_user"]
            target_id, title = user_table.c.id, user_table.c.username
            joined = sa.outerjoin(
                model, user_table, user_table.c.id == getattr(model, f.column_name)
            )
        else:
            target = st.spec.entity(f.to)  # type: ignore[arg-type]
            target_model = aliased(st.models.model(target.name))
            target_id, title = target_model.id, relation_title(target_model, target)
            joined = sa.outerjoin(
                model, target_model, target_model.id == getattr(model, f.column_name)
            )
        stmt = sa.select(target_id.label("key"), title.label("title"), measure).select_from(joined)
        stmt = apply_scope(stmt, entity_name, filters).group_by(target_id, title)
        # Largest first; NULLs sort differently per database, so rank them as 0.
        rank = sa.func.coalesce(measure_expression(model, chart_measure), 0)
        stmt = stmt.order_by(rank.desc(), sa.func.coalesce(target_id, 0))
        rows = st.db.session.execute(stmt.limit(MAX_CATEGORIES + 1)).all()
        data.truncated = len(rows) > MAX_CATEGORIES
        rows = rows[:MAX_CATEGORIES]
        data.labels = [none_label if k is None else str(t) for k, t, _ in rows]
        data.values = [to_number(empty if v is None else v) for _, _, v in rows]
        return data
    column = getattr(model, f.name)
    stmt = sa.select(column.label("key"), measure).select_from(model)
    stmt = apply_scope(stmt, entity_name, filters).group_by(column)
    bounded = f.type in ("enum", "boolean")
    if not bounded:
        rank = sa.func.coalesce(measure_expression(model, chart_measure), 0)
        stmt = stmt.order_by(rank.desc(), column).limit(MAX_CATEGORIES + 1)
    found = {k: to_number(empty if v is None else v) for k, v in st.db.session.execute(stmt)}
    if f.type == "enum":
        order = [c.key for c in f.choices] + [None]
        keys = [k for k in order if k in found] + [k for k in found if k not in order]
        data.labels = [none_label if k is None else f.choice_label(k, lang) for k in keys]
    elif f.type == "boolean":
        keys = [k for k in (True, False, None) if k in found]
        words = {True: gettext(N_("Yes")), False: gettext(N_("No")), None: none_label}
        data.labels = [words[k] for k in keys]
    else:
        keys = list(found)
        data.truncated = len(keys) > MAX_CATEGORIES
        keys = keys[:MAX_CATEGORIES]
        data.labels = [none_label if k is None else str(k) for k in keys]
    data.values = [found[k] for k in keys]
    return data


def kpi_value(entity_name: str, measure: Measure, filters: Any | None = None) -> float | None:
    """Return a KPI (count, or sum/avg/min/max of a field) over the rows the user sees."""
    st = state()
    model = st.models.model(entity_name)
    refuse_hidden(entity_name, None, measure)
    stmt = sa.select(measure_expression(model, measure)).select_from(model)
    value = st.db.session.execute(apply_scope(stmt, entity_name, filters)).scalar()
    return to_number(value if value is not None else empty_value(measure))


# -- reminders ----------------------------------------------------------------


def reminder_fields(entity: EntitySpec) -> list[FieldSpec]:
    """Return the entity's date fields named `next_*` or `due_*` (the reminder rule)."""
    return [
        f
        for f in entity.fields
        if f.type in DATE_TYPES and (f.name.startswith("next_") or f.name.startswith("due_"))
    ]


def reminders(entity_name: str, f: FieldSpec, today: dt.date | None = None,
              when: Any = None, shift: dt.timedelta = dt.timedelta(0)) -> ReminderList:
    """Return the records whose `f` (+ `shift`) falls today or before, oldest first, with counts.

    `when` (a declared reminder's condition, app/notify/dashboard.py) leaves out
    finished records; `shift` is an `after:` delay (due 24 h after creation).
    """
    st = state()
    lang = current_lang()
    entity = st.spec.entity(entity_name)
    model = st.models.model(entity_name)
    today = today or dt.date.today()
    column = getattr(model, f.name)
    if f.type == "datetime":
        start = dt.datetime.combine(today, dt.time()) - shift
        end = start + dt.timedelta(days=1)
        is_overdue, is_today, is_due = (
            column < start,
            (column >= start) & (column < end),
            column < end,
        )
    else:
        base = today - dt.timedelta(days=shift.days)
        is_overdue, is_today, is_due = column < base, column == base, column <= base
    # SUM(CASE ...) rather than COUNT(*) FILTER, which MariaDB lacks.
    counts = sa.select(
        sa.func.sum(sa.case((is_overdue, 1), else_=0)).label("overdue"),
        sa.func.sum(sa.case((is_today, 1), else_=0)).label("today"),
    ).select_from(model)
    if when is not None:
        is_due = sa.and_(is_due, when)
    counts = apply_scope(counts.where(is_due), entity_name, None)
    overdue_count, today_count = st.db.session.execute(counts).one()
    title = relation_title(model, entity)
    context_field = next((x for x in entity.fields if x.type == "relation" and not x.many), None)
    columns = [model.id, column.label("due"), title.label("title")]
    source: Any = model
    if context_field is not None:
        target = st.spec.entity(context_field.to)  # type: ignore[arg-type]
        target_model = aliased(st.models.model(target.name))
        columns.append(relation_title(target_model, target).label("context"))
        source = sa.outerjoin(
            model, target_model, target_model.id == getattr(model, context_field.column_name)
        )
    stmt = sa.select(*columns).select_from(source).where(is_due)
    stmt = apply_scope(stmt, entity_name, None).order_by(column, model.id).limit(MAX_REMINDERS)
    found = []
    for row in st.db.session.execute(stmt):
        due = (row.due + shift).date() if isinstance(row.due, dt.datetime) else (
            row.due + dt.timedelta(days=shift.days))
        text = "" if row.title is None else str(row.title)
        found.append(
            {
                "id": row.id,
                "title": text if len(text) <= 80 else text[:79] + "…",
                "context": str(getattr(row, "context", "") or ""),
                "due": due,
                "overdue": due < today,
                "days": (today - due).days,
            }
        )
    return ReminderList(
        entity=entity_name,
        entity_label=entity.label.get(lang),
        field=f.name,
        field_label=f.label.get(lang),
        overdue_count=int(overdue_count or 0),
        today_count=int(today_count or 0),
        records=found,
    )
