"""Helpers for the browser tests: log a Playwright page in as a user without going through the form."""

from __future__ import annotations

from typing import Any

from django.test import Client


def log_in(page: Any, live_server: Any, user: Any) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": live_server.url}])
