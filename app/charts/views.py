"""Chart pages (`/<entity>/charts/`), their JSON, the dashboard and the home page.

Each entity with `charts:` gets a FAB `BaseView` at `/<entity>` with the
permission `can_read` on `<entity>`, like the entity's list; the chart page
passes its query string (the list's `q` and `_flt_*` filters) on to the JSON
the chart script fetches. `/dashboard/` renders `dashboards.home` and is where
`/` sends a signed-in user.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.security.decorators import has_access_api
from flask_appbuilder.views import IndexView
from flask_login import current_user

from app.charts import aggregate, cache
from app.i18n import N_, current_lang, gettext
from app.schema.spec import ACTIONS, ChartSpec, DashboardItem, EntitySpec
from app.state import state
from app.views.crud import lazy_text

CHART_TEMPLATE = "charts/entity.html"
DASHBOARD_TEMPLATE = "charts/dashboard.html"


def can_read(entity_name: str) -> bool:
    """True when the signed-in user may read the entity."""
    from flask import current_app

    return bool(current_app.appbuilder.sm.has_access("can_read", entity_name))


def list_url(entity: EntitySpec, query: str = "") -> str:
    """Return the entity's list URL, with `query` (the current filters) if any."""
    url = url_for(f"{entity.class_name}View.list")
    return f"{url}?{query}" if query else url


def chart_data_url(entity: EntitySpec, chart: ChartSpec, query: str = "") -> str:
    """Return the URL of a chart's JSON, carrying the list filters in `query`."""
    url = url_for(f"{entity.class_name}ChartsView.chart_data", name=chart.name)
    return f"{url}?{query}" if query else url


def tile(entity: EntitySpec, chart: ChartSpec, value: Any = None, query: str = "") -> dict:
    """Return what a template needs to draw one chart or KPI tile."""
    lang = current_lang()
    return {
        "entity": entity.name,
        "name": chart.name,
        "type": chart.type,
        "title": chart.label.get(lang),
        "url": chart_data_url(entity, chart, query),
        "value": value,
        "link": list_url(entity, query),
    }


def format_number(value: float | None) -> str:
    """Return a KPI for display: thousands separators, decimals only when there are some."""
    if value is None:
        return "—"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


class EntityChartsView(BaseView):
    """Base of the generated chart views; `entity` is set on each subclass."""

    entity: EntitySpec
    default_view = "charts"
    method_permission_name = {"charts": "read", "chart_data": "read"}
    # Every action of the entity: FAB's permission sync deletes, on the shared
    # view menu `<entity>`, any permission a registered view does not list.
    base_permissions = [f"can_{action}" for action in ACTIONS]

    @expose("/charts/")
    @has_access
    def charts(self) -> Any:
        """The entity's charts, filtered like its list."""
        query = request.query_string.decode()
        filters = aggregate.list_filters(self.entity.name)
        tiles = []
        for chart in self.entity.charts:
            if not aggregate.chart_allowed(self.entity.name, chart):
                continue
            value = None
            if chart.type == "kpi":
                value = format_number(
                    cache.cached_aggregate(self.entity.name, chart, filters).values[0]
                )
            tiles.append(tile(self.entity, chart, value, query))
        return self.render_template(
            CHART_TEMPLATE,
            title=gettext(N_("%(entity)s charts"), entity=self.entity.label.get(current_lang())),
            tiles=tiles,
            list_link=list_url(self.entity, query),
            filtered=bool(query),
            locale=current_lang(),
        )

    @expose("/charts/data/<name>")
    @has_access_api
    def chart_data(self, name: str) -> Response:
        """The JSON of one chart, filtered like the list when given its arguments."""
        try:
            chart = self.entity.chart(name)
        except KeyError:
            abort(404)
        if not aggregate.chart_allowed(self.entity.name, chart):
            abort(403)
        filters = aggregate.list_filters(self.entity.name)
        return jsonify(cache.cached_aggregate(self.entity.name, chart, filters).as_json())


class DashboardView(BaseView):
    """`/dashboard/`: the home dashboard's KPIs, charts and due reminders."""

    route_base = "/dashboard"
    default_view = "index"
    class_permission_name = "dashboard"
    method_permission_name = {"index": "read"}

    @expose("/")
    @has_access
    def index(self) -> Any:
        """The home dashboard, with only what the user may read."""
        spec = state().spec
        lang = current_lang()
        kpis, charts = [], []
        for item in spec.dashboards.get("home", ()):
            if not can_read(item.entity):
                continue
            entity = spec.entity(item.entity)
            if item.chart is not None:
                chart = entity.chart(item.chart)
                if not aggregate.chart_allowed(entity.name, chart):
                    continue
                if chart.type == "kpi":
                    value = cache.cached_aggregate(entity.name, chart).values[0]
                    kpis.append(kpi_tile(entity, item, format_number(value), chart))
                else:
                    charts.append(tile(entity, chart))
            elif item.kpi is not None:
                value = cache.cached_kpi(entity.name, item.kpi)
                kpis.append(kpi_tile(entity, item, format_number(value)))
        from app.notify.dashboard import dashboard_reminders

        reminder_lists = []
        for entity in spec.entities:
            if not can_read(entity.name):
                continue
            for f, when, shift in dashboard_reminders(entity):  # declared rules, else next_/due_
                reminder = aggregate.reminders(entity.name, f, when=when, shift=shift)
                for record in reminder.records:
                    record["url"] = url_for(f"{entity.class_name}View.show", pk=record["id"])
                reminder_lists.append(reminder)
        return self.render_template(
            DASHBOARD_TEMPLATE,
            title=gettext(N_("Dashboard")),
            app_title=spec.title.get(lang),
            kpis=kpis,
            tiles=charts,
            reminders=reminder_lists,
            locale=lang,
        )


def kpi_tile(
    entity: EntitySpec, item: DashboardItem, value: str, chart: ChartSpec | None = None
) -> dict:
    """Return a dashboard KPI tile: its label, value and the list it counts."""
    lang = current_lang()
    if item.label is not None:
        title = item.label.get(lang)
    elif chart is not None:
        title = chart.label.get(lang)
    else:
        measure = item.kpi or aggregate.Measure()
        title = f"{entity.label.get(lang)} · {aggregate.measure_label(entity, measure, lang)}"
    return {"title": title, "value": value, "link": list_url(entity)}


class HomeView(IndexView):
    """`/`: signed-in users land on the dashboard, others on the login page."""

    @expose("/")
    def index(self) -> Any:
        if current_user.is_authenticated:
            return redirect(url_for("DashboardView.index"))
        return redirect(self.appbuilder.get_url_for_login)


def charts_link() -> str | None:
    """Return the charts URL of the list being shown (same filters), if it has charts.

    Used by the list template: `request.blueprint` names the entity's ModelView.
    """
    for entity in state().spec.entities:
        if request.blueprint == f"{entity.class_name}View":
            if not entity.charts or not can_read(entity.name):
                return None
            url = url_for(f"{entity.class_name}ChartsView.charts")
            query = request.query_string.decode()
            return f"{url}?{query}" if query else url
    return None


def make_charts_view(entity: EntitySpec) -> type[EntityChartsView]:
    """Generate the chart view class of one entity, at /<entity>/charts/."""
    attrs = {
        "entity": entity,
        "route_base": f"/{entity.name}",
        "class_permission_name": entity.name,
    }
    return type(f"{entity.class_name}ChartsView", (EntityChartsView,), attrs)


def register_chart_views(appbuilder: Any) -> None:
    """Register a chart view per entity with charts, and the dashboard first in the menu."""
    for entity in state().spec.entities:
        if entity.charts:
            appbuilder.add_view_no_menu(make_charts_view(entity))
    appbuilder.add_view(
        DashboardView,
        "dashboard",
        label=lazy_text(N_("Dashboard")),
        icon="fa-dashboard",
    )
    menu = appbuilder.menu.menu
    menu.insert(0, menu.pop())  # the dashboard leads the navigation bar
