"""Init hooks of the services beside the data path (audit, jobs, io, backup, charts).

Each is `hook(app, appbuilder)`, run inside the app context after the entity
views are registered. One list, so `create_app` stays the one place that wires.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ALL: list[Callable[[Any, Any], None]] = []

from app.audit import init_app as _audit_init  # noqa: E402

ALL.append(_audit_init)
from app.charts import init_charts as _charts_init  # noqa: E402

ALL.append(_charts_init)
from app.backup import init_app as _backup_init  # noqa: E402

ALL.append(_backup_init)

from app.views.api import register_apis  # noqa: E402

ALL.append(register_apis)
from app.jobs.views import init_jobs as _jobs_init  # noqa: E402

ALL.append(_jobs_init)
from app.io import init_io as _io_init  # noqa: E402

ALL.append(_io_init)
from app.security.headers import init_security  # noqa: E402

ALL.append(init_security)
from app.security.sessions_views import init_sessions_pages  # noqa: E402

ALL.append(init_sessions_pages)
from app.security.matrix import init_matrix  # noqa: E402

ALL.append(init_matrix)
from app.views.layout import init_layout  # noqa: E402

ALL.append(init_layout)
from app.approvals import init_app as _approvals_init  # noqa: E402

ALL.append(_approvals_init)
from app.views.boards import init_boards  # noqa: E402

ALL.append(init_boards)
from app.privacy import init_app as _privacy_init  # noqa: E402

ALL.append(_privacy_init)
from app.records.rollups import init_rollups  # noqa: E402

ALL.append(init_rollups)
from app.notify.views import init_notify  # noqa: E402

ALL.append(init_notify)

from app.demo import init_demo  # noqa: E402

ALL.append(init_demo)
