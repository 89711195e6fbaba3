"""Strict readers for configuration from the environment.

Every variable the product reads is listed in `.env.example`. A `<NAME>_FILE` variant (Docker secrets)
takes precedence over `<NAME>`. Malformed values raise `ConfigError` with one readable line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_UNSET = object()


class ConfigError(Exception):
    """A configuration value is missing or malformed. The message is one line for the user."""


def get(name: str, default: str | object = _UNSET) -> str:
    file_var = os.environ.get(f"{name}_FILE")
    if file_var:
        try:
            return Path(file_var).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={file_var} cannot be read: {exc.strerror}") from exc
    value = os.environ.get(name)
    if value is not None:
        return value
    if default is _UNSET:
        raise ConfigError(f"{name} is required but not set (see .env.example)")
    return default  # type: ignore[return-value]


def get_bool(name: str, default: bool) -> bool:
    raw = get(name, "1" if default else "0").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")


def get_int(name: str, default: int) -> int:
    raw = get(name, str(default)).strip()
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None


def get_float(name: str, default: float) -> float:
    raw = get(name, str(default)).strip()
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def get_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in get(name, default).split(",") if item.strip()]


@dataclass(frozen=True)
class DatabaseURL:
    host: str
    port: int
    name: str
    user: str
    password: str

    def django(self) -> dict[str, object]:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": self.host,
            "PORT": str(self.port),
            "NAME": self.name,
            "USER": self.user,
            "PASSWORD": self.password,
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {"connect_timeout": 5},
        }


def parse_database_url(url: str, *, var: str = "DATABASE_URL") -> DatabaseURL:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ConfigError(f"{var} must start with postgres:// (got {parts.scheme or 'no'} scheme)")
    name = parts.path.lstrip("/")
    if not parts.hostname or not name:
        raise ConfigError(f"{var} must name a host and a database: postgres://user@host:5432/db")
    try:
        port = parts.port or 5432
    except ValueError:
        raise ConfigError(f"{var} has an invalid port") from None
    return DatabaseURL(
        host=parts.hostname,
        port=port,
        name=unquote(name),
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
    )


def validate_redis_url(url: str, *, var: str = "REDIS_URL") -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(f"{var} must start with redis:// or rediss:// (got {url!r})")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"{var} must name a host: redis://127.0.0.1:6379/0 (got {url!r})")
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"{var} has an invalid port (got {url!r})") from None
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        raise ConfigError(f"{var} database must be a number (got {db!r})")
    return url
