"""The backup files in BACKUP_DIR: listing (with manifest and verify status) and retention."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app

from app.backup.create import backup_dir
from app.backup.format import MANIFEST, SUFFIX, BackupError, BackupReader
from app.backup.verify import recorded_status, status_path


@dataclass
class BackupFile:
    """One backup in BACKUP_DIR, as the list page and `backup list` show it."""

    path: Path
    size: int
    created_at: str
    tables: int
    rows: int
    revision: str | None
    encrypted: bool
    note: str
    status: dict[str, Any] | None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


def describe(path: Path) -> BackupFile:
    """Read a backup's manifest (cheap: zip keeps it findable from the end)."""
    keys = current_app.config.get("BACKUP_ENCRYPTION_KEY")
    size = path.stat().st_size
    try:
        with BackupReader(str(path), keys) as reader:
            m = reader.manifest
        return BackupFile(path, size, m.get("created_at", ""), len(m.get("tables", [])),
                          int(m.get("total_rows", 0)), m.get("revision"),
                          bool(m.get("encrypted")), m.get("note", ""), recorded_status(path))
    except BackupError as exc:
        m = _plain_manifest(path)  # e.g. encrypted with a key this console lacks
        return BackupFile(path, size, m.get("created_at", ""), len(m.get("tables", [])),
                          int(m.get("total_rows", 0)), m.get("revision"),
                          bool(m.get("encrypted")), m.get("note", ""), recorded_status(path),
                          str(exc))


def _plain_manifest(path: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read(MANIFEST))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        return {}


def list_backups(directory: Path | None = None) -> list[BackupFile]:
    """Every backup file in BACKUP_DIR, newest first."""
    folder = directory or backup_dir()
    files = sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [describe(p) for p in files]


def find_backup(name: str) -> Path:
    """The backup called `name` in BACKUP_DIR; a path outside it is refused."""
    folder = backup_dir().resolve()
    path = (folder / name).resolve()
    if path.parent != folder or not path.name.endswith(SUFFIX) or not path.exists():
        raise BackupError(f"no backup named {name!r} in {folder}")
    return path


def prune(keep: int | None = None, directory: Path | None = None) -> list[Path]:
    """Delete all but the newest `keep` (BACKUP_KEEP) backups; return the deleted files."""
    keep = int(current_app.config.get("BACKUP_KEEP", 14) if keep is None else keep)
    folder = directory or backup_dir()
    files = sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = files[max(keep, 0):] if keep > 0 else []
    for path in removed:
        path.unlink(missing_ok=True)
        status_path(path).unlink(missing_ok=True)
    return removed
