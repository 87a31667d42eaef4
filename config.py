"""All settings, read from the environment, with safe defaults for the embedded run.

`load_config(overrides)` returns a plain dict for `app.config`. Secrets that the
embedded default needs (SECRET_KEY, the field-encryption key) are generated once
into `instance/` and reused; outside debug a missing SECRET_KEY is refused.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent


class ConfigError(RuntimeError):
    """An unsafe or impossible configuration; the message says what to set."""


def _instance_secret(instance: Path, name: str, make: Any) -> str:
    """Return the secret stored in instance/<name>, creating it on first use."""
    path = instance / name
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _bool(value: str | bool | None, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _proxy_count(value: Any) -> int:
    """Return the number of trusted reverse proxies in front of the app (PROXY_COUNT)."""
    if value in (None, ""):
        return 0
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = -1
    if count < 0:
        raise ConfigError(
            f"PROXY_COUNT must be the number of reverse proxies in front of the app (0 or more), "
            f"not {value!r}."
        )
    return count


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the app configuration from the environment and `overrides`."""
    overrides = dict(overrides or {})
    env = os.environ
    instance = Path(overrides.get("INSTANCE_PATH") or env.get("INSTANCE_PATH") or ROOT / "instance")
    production = _bool(overrides.get("PRODUCTION", env.get("SCHEMADESK_PRODUCTION")))

    secret_key = overrides.get("SECRET_KEY") or env.get("SECRET_KEY")
    if production and (not secret_key or secret_key in ("changeme", "secret", "dev")):
        raise ConfigError(
            "SECRET_KEY must be set to a long random value in production (SCHEMADESK_PRODUCTION=1)."
        )
    if not secret_key:
        secret_key = _instance_secret(instance, "secret_key", lambda: secrets.token_hex(32))

    keys = overrides.get("FIELD_ENCRYPTION_KEYS") or env.get("FIELD_ENCRYPTION_KEYS")
    if isinstance(keys, str):
        keys = [k for k in keys.split(",") if k.strip()]
    if not keys:
        keys = [_instance_secret(instance, "field_key", lambda: Fernet.generate_key().decode())]

    database_url = overrides.get("DATABASE_URL") or env.get(
        "DATABASE_URL", f"sqlite:///{instance / 'schemadesk.db'}"
    )
    schema_path = (
        overrides.get("SCHEMA_PATH") or env.get("SCHEMA_PATH") or str(ROOT / "schema" / "crm.yaml")
    )
    redis_url = overrides.get("REDIS_URL", env.get("REDIS_URL")) or None
    proxy_count = _proxy_count(overrides.get("PROXY_COUNT", env.get("PROXY_COUNT")))

    config: dict[str, Any] = {
        "INSTANCE_PATH": str(instance),
        "PRODUCTION": production,
        "SECRET_KEY": secret_key,
        "FIELD_ENCRYPTION_KEYS": keys,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "SCHEMA_PATH": schema_path,
        "MIGRATIONS_DIR": overrides.get("MIGRATIONS_DIR") or env.get("MIGRATIONS_DIR"),
        "REDIS_URL": redis_url,
        "ADMIN_PASSWORD": env.get("ADMIN_PASSWORD"),
        "BACKUP_DIR": env.get("BACKUP_DIR") or str(instance / "backups"),
        "UPLOAD_DIR": env.get("UPLOAD_DIR") or str(instance / "uploads"),
        "BACKUP_SCHEDULE": env.get("BACKUP_SCHEDULE"),
        "BACKUP_KEEP": int(env.get("BACKUP_KEEP", "14")),
        "BACKUP_ENCRYPTION_KEY": env.get("BACKUP_ENCRYPTION_KEY"),
        "BABEL_DEFAULT_LOCALE": env.get("BABEL_DEFAULT_LOCALE"),
        "BABEL_TRANSLATION_DIRECTORIES": str(ROOT / "translations"),
        # Flask-AppBuilder
        "FAB_UPDATE_PERMS": False,  # roles are synced from the YAML explicitly
        "FAB_CREATE_DB": False,  # tables come from migrations only
        "FAB_ADD_SECURITY_API": True,
        "FAB_API_SWAGGER_UI": True,
        "FAB_API_MAX_PAGE_SIZE": 500,
        "AUTH_ROLE_ADMIN": "Admin",
        "AUTH_ROLE_PUBLIC": "Public",
        "AUTH_USER_REGISTRATION": False,
        # Failed sign-ins (web and API) per account and per client address;
        # successful ones are not counted (app/security/login_limit.py).
        "AUTH_RATE_LIMITED": True,
        "AUTH_RATE_LIMIT": env.get("AUTH_RATE_LIMIT", "10 per 15 minute"),
        "AUTH_RATE_LIMIT_PER_IP": env.get("AUTH_RATE_LIMIT_PER_IP"),
        "RATELIMIT_ENABLED": _bool(env.get("RATELIMIT_ENABLED"), True),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "FAB_PASSWORD_COMPLEXITY_ENABLED": True,
        "WTF_CSRF_ENABLED": True,
        # CSRFProtect is registered app-wide; our own before_request decides
        # (bearer-token API calls are exempt), see app/security/headers.py.
        "WTF_CSRF_CHECK_DEFAULT": False,
        # The token lives as long as the signed-in session: operators keep forms open all day.
        "WTF_CSRF_TIME_LIMIT": None,
        "FAB_ALLOW_GET_UNSAFE_MUTATIONS": False,  # no GET deletes
        "PROXY_COUNT": proxy_count,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), production),
        "MAX_CONTENT_LENGTH": int(env.get("MAX_UPLOAD_MB", "100")) * 1024 * 1024,
        # What one imported file may hold (app/io/reader.py): a hostile upload is refused
        # with a message before it costs memory or time.
        "IMPORT_MAX_UNCOMPRESSED_MB": int(env.get("IMPORT_MAX_UNCOMPRESSED_MB", "200")),
        "IMPORT_MAX_SHARED_STRINGS_MB": int(env.get("IMPORT_MAX_SHARED_STRINGS_MB", "50")),
        "IMPORT_MAX_CELL_CHARS": int(env.get("IMPORT_MAX_CELL_CHARS", "32767")),
        "IMPORT_MAX_ROWS": int(env.get("IMPORT_MAX_ROWS", "1000000")),
        "JOB_INLINE_SYNC": False,
    }
    config.update(overrides)
    config["PROXY_COUNT"] = proxy_count  # checked above, whatever form the override took
    return config
