"""Check a backup without restoring it: manifest, every member, every count and checksum."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context

from app.backup import signature
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
    signed: bool = False  # signed by a key this console holds (or was given)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "seconds": self.seconds,
                "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def signature_problem(reader: BackupReader, signing_keys: list[str] | str | None = None,
                      allow_unsigned: bool = False) -> str | None:
    """Why the manifest's signature does not hold (None when it does, or unsigned is allowed).

    `signing_keys`: FIELD_ENCRYPTION_KEYS of the instance that took the backup,
    tried before this console's own keys.
    """
    path = reader.path
    if reader.signature is None:
        if allow_unsigned:
            return None
        return gettext(N_("%(file)s is not signed: it was taken by an older SchemaDesk, or its "
                          "signature was removed, so nothing proves where it comes from. If you "
                          "trust its origin, run the command again with --allow-unsigned."),
                       file=path)
    keys = signature.split_keys(signing_keys) + signature.instance_keys()
    sig = reader.signature if isinstance(reader.signature, dict) else {}
    outcome = signature.check(reader.manifest_bytes, sig, keys) if keys else "foreign"
    if outcome == "ok":
        return None
    if outcome == "foreign":
        return gettext(N_("%(file)s is signed with a key this console does not hold (key id "
                          "%(key_id)s), or its signature was forged. To restore a backup of "
                          "another instance, give that instance's FIELD_ENCRYPTION_KEYS with "
                          "--key (or SCHEMADESK_BACKUP_KEY)."),
                       file=path, key_id=str(sig.get("key_id", "?"))[:16])
    return gettext(N_("%(file)s is forged or altered: its manifest does not match its signature. "
                      "Do not restore it."), file=path)


def verify_backup(
    path: str | Path,
    keys: str | list[str] | None = None,
    *,
    signing_keys: list[str] | str | None = None,
    allow_unsigned: bool = False,
    data: bool = True,
) -> VerifyResult:
    """Check the manifest's signature, then compare each table's rows and SHA-256 with it.

    `data=False` checks the signature and the list of members only: a restore
    that hashes every table while loading it, inside a transaction that a
    mismatch rolls back, need not read the whole file twice.
    """
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
    forged = signature_problem(reader, signing_keys, allow_unsigned)
    if forged:
        problems.append(forged)
    with reader:
        listed = {t["member"] for t in reader.tables}
        for extra in sorted(set(reader.members()) - listed):
            problems.append(gettext(N_("%(file)s is altered: %(member)s is not in its manifest."),
                                    file=path, member=extra))
        for table in reader.tables if data else []:
            sha = hashlib.sha256()
            rows = 0
            try:
                for block in reader.blocks(table):
                    sha.update(block)
                    rows += block.count(b"\n")
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
    result = VerifyResult(path, not problems, problems, manifest,
                          signed=reader.signature is not None and not forged)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def status_path(path: str | Path) -> Path:
    """Where the last verify result of a backup file is kept (beside it)."""
    return Path(str(path) + ".verify.json")


def verify_and_record(path: str | Path, keys: str | list[str] | None = None,
                      **checks: Any) -> VerifyResult:
    """Verify a backup (see `verify_backup`) and keep the result beside it for the backups page."""
    result = verify_backup(path, keys, **checks)
    status_path(path).write_text(json.dumps(result.as_dict(), ensure_ascii=False))
    return result


def recorded_status(path: str | Path) -> dict[str, Any] | None:
    """The last recorded verify result of a backup, if any."""
    try:
        return json.loads(status_path(path).read_text())
    except (OSError, ValueError):
        return None


def require_valid(path: str | Path, keys: str | list[str] | None = None,
                  **checks: Any) -> VerifyResult:
    """Verify a backup (see `verify_backup`); raise BackupError naming every problem."""
    result = verify_backup(path, keys, **checks)
    if not result.ok:
        raise BackupError("\n".join(result.problems))
    return result
