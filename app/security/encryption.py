"""Field encryption at rest with Fernet / MultiFernet (newest key first)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


def cipher() -> MultiFernet:
    """Return the MultiFernet for the current app's FIELD_ENCRYPTION_KEYS."""
    cached = current_app.extensions.get("schemadesk_cipher")
    if cached is None:
        keys = current_app.config["FIELD_ENCRYPTION_KEYS"]
        cached = MultiFernet([Fernet(k.strip().encode()) for k in keys if k.strip()])
        current_app.extensions["schemadesk_cipher"] = cached
    return cached


def encrypt(value: str) -> str:
    return cipher().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return cipher().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        # A value written before encryption was switched on, or with a lost key:
        # show it as stored rather than failing the whole page.
        return token
