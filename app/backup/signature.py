"""The backup's signature: an HMAC-SHA256 over the manifest, keyed from the instance's key.

The manifest carries every table's row count and SHA-256, so checksums alone
prove only that the file agrees with itself: whoever can rewrite a table can
recompute its checksum and the manifest too (an extra Admin in `ab_user`, with
counts and digests to match). The signature closes that: `manifest.sig` holds
HMAC-SHA256(manifest bytes) under a key derived (HKDF-SHA256) from the
instance's newest FIELD_ENCRYPTION_KEYS entry.

Why that key and not SECRET_KEY: it is the key an admin must already carry to
another machine (the encrypted fields of a restored database are unreadable
without it), it is never rotated away (older keys stay in the list, and any
of them verifies), and rotating SECRET_KEY (which only signs sessions) must
not orphan every backup. The signature also names the key by an id (a hash
of the derived key, which reveals nothing of it), so a refusal can tell
"signed by another instance" from "altered".
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app, has_app_context

ALGORITHM = "HMAC-SHA256"
INFO = b"schemadesk backup manifest signature v1"


def derive(secret: str | bytes) -> bytes:
    """Return the signing key derived from one instance key (a FIELD_ENCRYPTION_KEYS entry)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(raw.strip())


def key_id(key: bytes) -> str:
    """Return a short public name of a derived key."""
    return hashlib.sha256(b"schemadesk key id\x00" + key).hexdigest()[:16]


def sign(manifest: bytes, secret: str | bytes) -> dict[str, str]:
    """Return the signature document of `manifest` under `secret`."""
    key = derive(secret)
    return {"alg": ALGORITHM, "key_id": key_id(key),
            "hmac": hmac.new(key, manifest, hashlib.sha256).hexdigest()}


def split_keys(values: Iterable[str] | str | None) -> list[str]:
    """Return the keys of comma-separated and/or repeated values, in order, without blanks."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [k.strip() for v in values for k in str(v).split(",") if k.strip()]


def instance_keys() -> list[str]:
    """Return this console's FIELD_ENCRYPTION_KEYS (newest first; none outside an app)."""
    if not has_app_context():
        return []
    return split_keys(current_app.config.get("FIELD_ENCRYPTION_KEYS"))


def check(manifest: bytes, signature: dict[str, Any], secrets: Iterable[str]) -> str:
    """Return 'ok' when one of `secrets` signed `manifest`; else 'foreign' or 'altered'.

    'foreign': no given key has the signature's key id (another instance signed
    it, or the id was rewritten too); 'altered': a given key has that id but the
    HMAC does not match, so the manifest changed after it was signed.
    """
    expected = str(signature.get("hmac", ""))
    known_id = False
    for secret in secrets:
        key = derive(secret)
        digest = hmac.new(key, manifest, hashlib.sha256).hexdigest()
        if hmac.compare_digest(digest, expected):
            return "ok"
        known_id = known_id or key_id(key) == signature.get("key_id")
    return "altered" if known_id else "foreign"
