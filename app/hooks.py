"""Init hooks of the services beside the data path (audit, jobs, io, backup, charts).

Each is `hook(app, appbuilder)`, run inside the app context after the entity
views are registered. One list, so `create_app` stays the one place that wires.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ALL: list[Callable[[Any, Any], None]] = []
