"""The ASGI application (what `bin/np up`, the Dockerfile and docker-compose serve, through gunicorn with
uvicorn workers). Inference and streaming views are async; every other view runs in a thread of its own
per request (Django's ThreadSensitiveContext). Persistent database connections are per thread, so under
ASGI they would outlive their request's thread and pile up until PostgreSQL refuses new clients; here
each process borrows connections from a psycopg pool instead (CONN_MAX_AGE = 0, returned at the end of
each request; NP_ASGI_DB_POOL_MAX per process, default 16)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuronpedia.settings.local")
application = get_asgi_application()


def _pooled_connections() -> None:
    from django.conf import settings  # noqa: PLC0415

    for database in settings.DATABASES.values():
        database["CONN_MAX_AGE"] = 0
        if database.get("ENGINE") == "django.db.backends.postgresql":
            database.setdefault("OPTIONS", {})["pool"] = {
                "min_size": 2, "max_size": settings.NP_ASGI_DB_POOL_MAX, "timeout": 10}


_pooled_connections()
