"""Approvals (审批): workflow steps that wait for approvers, the inbox and its API.

`service` holds the rules (who approves, submit, decide, history); `views`
the inbox page (/approvals/) and the top-bar badge; `api` the JSON endpoints
(/api/v1/approvals/). `init_app` wires the views, the API and the template
helpers the show page's history panel uses.
"""

from __future__ import annotations

from typing import Any


def init_app(app: Any, appbuilder: Any) -> None:
    """Init hook: the inbox, its API, and the template helpers for badge and history."""
    from app.approvals import api, bulk, views

    views.register(app, appbuilder)
    api.register(appbuilder)
    bulk.register(app)
