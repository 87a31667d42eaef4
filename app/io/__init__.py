"""CSV/XLSX import (detect, map, validate, dry run, upsert) and export (stream, mask)."""

from __future__ import annotations

from typing import Any


def init_io(app: Any, appbuilder: Any) -> None:
    """Register the import/export job kinds and the /<entity>/import|export views."""
    from app.io import jobs

    jobs.register()
    from app.io.views import register_views

    register_views(appbuilder)
