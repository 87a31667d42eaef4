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


class SubjectText(EncryptedText):
    """A data subject's sealed field: ciphertext under the record's own key (app/privacy/keys.py).

    Python sees clear text, or "erased" once the key is destroyed. Backups copy
    the ciphertext as it is stored (it is an EncryptedText to them).
    """

    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        from app.privacy.keys import bind_value

        return bind_value(value)

    def column_expression(self, column: Any) -> Any:
        """Read each sealed value with its wrapped key, in the same SELECT (no query per row)."""
        from app.privacy.keys import with_wrapped_key

        return with_wrapped_key(column, self)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        from app.privacy.keys import result_value

        return result_value(value)
