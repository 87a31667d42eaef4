"""Sensitive fields: masked for roles without `view_sensitive` on the entity.

`mask_value(field, value)` gives the masked text (`138****5678`,
`z***@example.com`, `1101**********1234`); `sees_sensitive(user, entity)` says
whether a user sees clear values. Only the record service calls these: every
page, API response, export and chart gets its values from the service.
"""

from __future__ import annotations

import re
from typing import Any

from flask import g, has_request_context

from app.records.scope import is_admin
from app.schema.spec import FieldSpec

MASK = "*"


def _mask_phone(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 7:
        return digits[:3] + MASK * 4 + digits[-4:]
    return _mask_text(text)


def _mask_email(text: str) -> str:
    local, _, domain = text.partition("@")
    if not domain:
        return _mask_text(text)
    return (local[:1] or MASK) + MASK * 3 + "@" + domain


def _mask_text(text: str) -> str:
    n = len(text)
    if n <= 1:
        return MASK
    if n == 2:
        return text[0] + MASK
    if n <= 6:
        return text[0] + MASK * (n - 2) + text[-1]
    keep_head = 4 if n >= 12 else 2
    keep_tail = 4 if n >= 12 else 2
    return text[:keep_head] + MASK * (n - keep_head - keep_tail) + text[-keep_tail:]


def mask_value(field: FieldSpec, value: Any) -> str:
    """Return the masked text of `value` for a sensitive field ('' for empty values)."""
    if value is None or value == "":
        return ""
    text = str(value)
    if field.type == "phone":
        return _mask_phone(text)
    if field.type == "email":
        return _mask_email(text)
    if field.type in ("integer", "decimal", "date", "datetime", "boolean"):
        return MASK * 4
    return _mask_text(text)


def is_masked(field: FieldSpec, submitted: Any) -> bool:
    """True when `submitted` looks like a masked value (it contains our mask run)."""
    return isinstance(submitted, str) and MASK * 2 in submitted or submitted == MASK


def sees_sensitive(user: Any, entity_name: str) -> bool:
    """True when `user` may see `entity_name`'s sensitive fields in clear.

    No signed-in account: the CLI and system jobs see clear values; an anonymous
    web request never does.
    """
    if user is None:
        return not has_request_context()
    cache = g.setdefault("_schemadesk_sensitive", {}) if has_request_context() else {}
    key = (user.id, entity_name)
    if key not in cache:
        cache[key] = is_admin(user) or any(
            pv.permission
            and pv.view_menu
            and pv.permission.name == "can_view_sensitive"
            and pv.view_menu.name == entity_name
            for role in (user.roles or [])
            for pv in role.permissions
        )
    return cache[key]


def logged_value(field: FieldSpec, value: Any) -> Any:
    """The form a sensitive value takes in the audit log: masked, for every reader.

    The clear value never enters the log, so no auditor export or diff can show
    it; relation titles (`{"id", "title"}`) and lists are masked item by item.
    """
    if value is None or value == "":
        return value
    if isinstance(value, list):
        return [mask_value(field, v) for v in value]
    if isinstance(value, dict):
        return {"id": value.get("id"), "title": mask_value(field, value.get("title"))}
    return mask_value(field, value)


__all__ = ["is_masked", "logged_value", "mask_value", "sees_sensitive"]
