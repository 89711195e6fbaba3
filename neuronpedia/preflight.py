"""Fail fast, in one line, when the database or Redis cannot be used.

Called by manage.py, the Celery worker start-up and the test session. When the embedded PostgreSQL is
the configured database, it is started here if it is not running yet (0.1 s when it is).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from neuronpedia import devservices
from neuronpedia.lib import env


def check_database(url: str) -> None:
    import psycopg  # noqa: PLC0415

    db = env.parse_database_url(url)
    try:
        with psycopg.connect(host=db.host, port=db.port, dbname=db.name, user=db.user,
                             password=db.password, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "connection failed"
        source = "embedded PostgreSQL" if devservices.uses_embedded_postgres() else "DATABASE_URL"
        raise env.ConfigError(
            f"cannot reach PostgreSQL at {db.host}:{db.port}/{db.name} ({source}): {reason}"
        ) from None


def check_redis(url: str) -> None:
    import redis  # noqa: PLC0415

    env.validate_redis_url(url)
    parts = urlsplit(url)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        raise env.ConfigError(
            f"cannot reach Redis at {parts.hostname}:{parts.port or 6379} (REDIS_URL): {exc}"
        ) from None


def ensure_services(*, redis_needed: bool = True) -> None:
    """Start the embedded PostgreSQL when it is the configured database, then check both services."""
    if devservices.uses_embedded_postgres():
        devservices.start_postgres()
    check_database(devservices.database_url())
    if redis_needed:
        check_redis(devservices.redis_url())
