"""SQLite's own online backup: an exact page copy of a live database, beside the portable file.

It restores only into SQLite (copy the file back while the console is stopped),
which is why the portable `.sdbackup` stays the default.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import make_url

from app.backup.format import BackupError
from app.i18n import N_, gettext
from app.state import state


def sqlite_snapshot(target: str | Path, source_url: str | None = None) -> Path:
    """Copy the app's SQLite database (or `source_url`) to `target` with the online backup API."""
    url = state().db.engine.url if source_url is None else make_url(source_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise BackupError(gettext(N_("The native snapshot exists only for SQLite databases.")))
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(url.database)
    dest = sqlite3.connect(str(target))
    try:
        with dest:
            source.backup(dest, pages=4096)
    finally:
        dest.close()
        source.close()
    return target
