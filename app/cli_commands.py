"""Commands of the service packages, added to `schemadesk` (see app/cli.py)."""

from __future__ import annotations

from typing import Any

ALL: list[Any] = []

from app.audit.cli import audit as _audit_cli  # noqa: E402

ALL.append(_audit_cli)

from app.backup.cli import backup_cli  # noqa: E402

ALL.append(backup_cli)

from app.jobs.runner import worker_command  # noqa: E402

ALL.append(worker_command)
from app.io.cli import export_command, import_command  # noqa: E402

ALL += [import_command, export_command]
from app.security.cli import keys as keys_cli  # noqa: E402
from app.security.cli import roles as roles_cli  # noqa: E402

ALL += [keys_cli, roles_cli]
from app.security.mfa_cli import mfa_cli  # noqa: E402

ALL.append(mfa_cli)
from app.demo import demo as _demo_cli  # noqa: E402

ALL.append(_demo_cli)
from app.records.rollups import rollups_cli  # noqa: E402

ALL.append(rollups_cli)
from app.privacy.cli import erase_command, retention_cli  # noqa: E402

ALL += [erase_command, retention_cli]
