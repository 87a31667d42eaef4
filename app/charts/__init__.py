"""Charts and dashboards from the schema's `charts:` and `dashboards:`.

`aggregate` turns a `ChartSpec` into one GROUP BY query (per-dialect date
truncation, the list's filters and the user's row rule applied) and returns
labelled series; `views` serves `/<entity>/charts/`, `/dashboard/` and the JSON
the chart script fetches. Apache ECharts is served from `app/static/vendor/`.
"""

from __future__ import annotations

from typing import Any


def init_charts(app: Any, appbuilder: Any) -> None:
    """Register the chart pages, the dashboard and the home-page redirect."""
    from app.charts import cache
    from app.charts.views import charts_link, register_chart_views

    cache.install(app)  # aggregates cached per scope, dropped by any write to the entity

    register_chart_views(appbuilder)
    app.jinja_env.globals["sd_charts_link"] = charts_link
