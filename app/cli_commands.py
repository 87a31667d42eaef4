"""Commands of the service packages, added to `schemadesk` (see app/cli.py)."""

from __future__ import annotations

from typing import Any

ALL: list[Any] = []
