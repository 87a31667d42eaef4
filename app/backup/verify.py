"""Check a backup without restoring it: manifest, every member, every count and checksum."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context

from app.backup.format import BackupError, BackupReader
from app.i18n import N_, gettext


@dataclass
class VerifyResult:
    """What verifying one backup file found."""

    path: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "seconds": self.seconds,
                "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def verify_backup(path: str | Path, keys: str | list[str] | None = None) -> VerifyResult:
    """Read the whole file and compare each table's rows and SHA-256 with its manifest."""
    started = time.perf_counter()
    path = str(path)
    if keys is None and has_app_context():
        keys = current_app.config.get("BACKUP_ENCRYPTION_KEY")
    try:
        reader = BackupReader(path, keys)
    except BackupError as exc:
        result = VerifyResult(path, False, [str(exc)])
        result.seconds = round(time.perf_counter() - started, 3)
        return result
    problems: list[str] = []
    with reader:
        listed = {t["member"] for t in reader.tables}
        for extra in sorted(set(reader.members()) - listed):
            problems.append(gettext(N_("%(file)s is altered: %(member)s is not in its manifest."),
                                    file=path, member=extra))
        for table in reader.tables:
            sha = hashlib.sha256()
            rows = 0
            try:
                for line in reader.lines(table):
                    sha.update(line)
                    rows += 1
            except BackupError as exc:
                problems.append(str(exc))
                continue
            if rows != table["rows"]:
                problems.append(
                    gettext(N_("%(file)s is altered or truncated: table %(table)s has %(found)d "
                               "rows, its manifest says %(expected)d."),
                            file=path, table=table["name"], found=rows, expected=table["rows"])
                )
            elif sha.hexdigest() != table["sha256"]:
                problems.append(
                    gettext(N_("%(file)s is altered: the checksum of table %(table)s does not "
                               "match its manifest."), file=path, table=table["name"])
                )
        manifest = reader.manifest
    result = VerifyResult(path, not problems, problems, manifest)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def status_path(path: str | Path) -> Path:
    """Where the last verify result of a backup file is kept (beside it)."""
    return Path(str(path) + ".verify.json")


def verify_and_record(path: str | Path, keys: str | list[str] | None = None) -> VerifyResult:
    """Verify a backup and keep the result beside it for the backups page."""
    result = verify_backup(path, keys)
    status_path(path).write_text(json.dumps(result.as_dict(), ensure_ascii=False))
    return result


def recorded_status(path: str | Path) -> dict[str, Any] | None:
    """The last recorded verify result of a backup, if any."""
    try:
        return json.loads(status_path(path).read_text())
    except (OSError, ValueError):
        return None


def require_valid(path: str | Path, keys: str | list[str] | None = None) -> VerifyResult:
    """Verify a backup and raise BackupError naming every problem if it is not intact."""
    result = verify_backup(path, keys)
    if not result.ok:
        raise BackupError("\n".join(result.problems))
    return result
