"""Helpers shared by tests that start real processes (workers, servers) against the test database."""

from __future__ import annotations

from urllib.parse import quote

from django.db import connection


def child_database_url() -> str:
    """The test database as a DATABASE_URL a child process can use, password included (the embedded
    PostgreSQL requires one since its app role exists)."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = db.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}" if password else user
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
