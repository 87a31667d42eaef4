"""Regenerate this round's CRM revision from the current metadata (a developer tool).

The CRM ships committed Alembic revisions. While several changes to the system
tables and the CRM schema are in progress at once, one revision
(`ROUND_REVISION`, on top of `BASE_REVISION`) is regenerated from the whole
metadata instead of each change adding its own (which would fork the history):

    python tools/crm_revision.py

It upgrades a scratch SQLite database to `BASE_REVISION`, deletes the old file
of `ROUND_REVISION` and autogenerates it again. A file lock serialises runs.
New NOT NULL columns on existing tables need a `server_default`.
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VERSIONS = ROOT / "migrations" / "versions" / "crm"
BASE_REVISION = "2b414ac35694"
ROUND_REVISION = "5e1f0a9c3d27"
MESSAGE = "approvals, notifications, views, rollups, sessions"


def main() -> None:
    from alembic import command

    with (VERSIONS / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for old in VERSIONS.glob(f"{ROUND_REVISION}_*.py"):
            old.unlink()
        with tempfile.TemporaryDirectory() as tmp:
            os.environ.setdefault("ADMIN_PASSWORD", "Scratch-Pass-2024!")
            from app import create_app
            from app.migrate import alembic_config, upgrade

            app = create_app({
                "SCHEMA_PATH": str(ROOT / "schema" / "crm.yaml"),
                "DATABASE_URL": f"sqlite:///{tmp}/scratch.db",
                "INSTANCE_PATH": f"{tmp}/instance",
                "TESTING": True,
            })
            with app.app_context():
                upgrade(BASE_REVISION)
                script = command.revision(alembic_config(), message=MESSAGE,
                                          autogenerate=True, rev_id=ROUND_REVISION)
        written = list(VERSIONS.glob(f"{ROUND_REVISION}_*.py"))
        print(f"written: {written[0].relative_to(ROOT) if written else 'nothing'} ({script})")


if __name__ == "__main__":
    main()
