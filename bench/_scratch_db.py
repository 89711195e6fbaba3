"""A scratch PostgreSQL database for a benchmark: created fresh on the project's server, migrated, used
through DATABASE_URL, and dropped at exit (unless kept). One copy of what every database benchmark needs."""

from __future__ import annotations

import atexit
import os


def scratch_database(name: str, *, keep: bool = False, debug: bool = False, allow_async_unsafe: bool = False,
                     migrate: bool = True) -> None:
    """Create (replacing) database `name`, point Django at it, set Django up and migrate. Production-like
    rendering unless `debug` (no debug cursor, no debug toolbar)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuronpedia.settings.local")
    if not debug:
        os.environ["DJANGO_DEBUG"] = "false"
    if allow_async_unsafe:  # benchmarks that drive a browser from the same process
        os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    import psycopg

    from neuronpedia import devservices
    from neuronpedia.lib import env
    from neuronpedia.preflight import ensure_services

    ensure_services(redis_needed=False)
    url = env.parse_database_url(devservices.database_url())
    admin = dict(host=url.host, port=url.port, user=url.user, password=url.password, dbname="postgres")
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    auth = f"{url.user}:{url.password}@" if url.password else f"{url.user}@"
    os.environ["DATABASE_URL"] = f"postgres://{auth}{url.host}:{url.port}/{name}"
    if not keep:
        def _drop() -> None:
            try:
                from django.db import connections

                connections.close_all()
            except Exception:  # noqa: BLE001 - Django may not be set up yet
                pass
            with psycopg.connect(**admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        atexit.register(_drop)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
