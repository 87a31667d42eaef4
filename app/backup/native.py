"""SQLite's own online backup: an exact page copy of a live database, beside the portable file.

It restores only into SQLite (copy the file back while the console is stopped),
which is why the portable `.sdbackup` stays the default. Like the portable file,
it holds no subject keys: they are deleted from the copy, which is then vacuumed
so no page of it keeps their bytes (after copying it back, `schemadesk keys
import` puts the keys of a `keys export` back).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import make_url

from app.backup.engine import KEY_TABLES
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
        _drop_keys(dest)
    finally:
        dest.close()
        source.close()
    return target


def _drop_keys(dest: sqlite3.Connection) -> None:
    """Empty the key tables of the copy and rewrite the file without their pages."""
    present = {name for (name,) in dest.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    mode = dest.execute("PRAGMA journal_mode").fetchone()[0]
    dest.execute("PRAGMA journal_mode=DELETE")  # the pages go straight to the file
    dest.execute("PRAGMA secure_delete=ON")
    with dest:
        for name in KEY_TABLES:
            if name in present:
                dest.execute(f'DELETE FROM "{name}"')
    dest.execute("VACUUM")
    if str(mode).lower() == "wal":
        dest.execute("PRAGMA journal_mode=WAL")  # as the source was; no -wal left at close
