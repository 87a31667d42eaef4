"""Column types of our own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator


class EncryptedText(TypeDecorator):
    """Text stored encrypted at rest (Fernet); plain text in Python.

    The cipher comes from the current app (`app.security.encryption`), so keys
    follow `FIELD_ENCRYPTION_KEYS` and can be rotated. Migrations see plain Text.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        from app.security.encryption import encrypt

        return encrypt(str(value))

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        from app.security.encryption import decrypt

        return decrypt(value)
