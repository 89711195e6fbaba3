"""The API rate limiter counts in Django's cache (CACHES: Redis), so every web process shares the counts;
with the cache unreachable, the limiter and the sign-in throttle let requests through."""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def limited(settings: Any) -> Any:
    settings.NP_RATE_LIMIT_ENABLED = True
    settings.NP_RATE_LIMIT_KEY_PREFIX = f"np:test:{uuid.uuid4().hex}"
    settings.NP_RATE_LIMITS = {"/api": 3}
    settings.NP_RATE_LIMIT_WINDOW_SECONDS = 86_400
    return settings


def _counter(settings: Any, identity: str) -> str:
    window = int(time.time() // settings.NP_RATE_LIMIT_WINDOW_SECONDS)
    return f"{settings.NP_RATE_LIMIT_KEY_PREFIX}:/api:{identity}:{window}"


def _post(address: str) -> Any:
    return Client(REMOTE_ADDR=address).post("/api/features", "[]", content_type="application/json")


def test_each_request_is_counted_in_the_django_cache(limited: Any) -> None:
    assert _post("10.3.0.1")["x-limit-remaining"] == "2"
    assert cache.get(_counter(limited, "ip:10.3.0.1")) == 1
    assert _post("10.3.0.1")["x-limit-remaining"] == "1"
    assert cache.get(_counter(limited, "ip:10.3.0.1")) == 2


def test_a_request_sees_the_count_other_processes_wrote_to_the_cache(limited: Any) -> None:
    cache.set(_counter(limited, "ip:10.3.0.2"), 3, timeout=60)  # three requests seen by another process
    refused = _post("10.3.0.2")
    assert refused.status_code == 429
    assert cache.get(_counter(limited, "ip:10.3.0.2")) == 4
    assert _post("10.3.0.3").status_code == 200  # other clients have counters of their own


def test_the_counter_expires_with_its_window(limited: Any) -> None:
    _post("10.3.0.4")
    ttl = cache._cache.get_client().ttl(cache.make_key(_counter(limited, "ip:10.3.0.4")))
    assert 0 < ttl <= limited.NP_RATE_LIMIT_WINDOW_SECONDS + 1


def _unreachable_cache(settings: Any) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{port}/0"}}


def test_the_limiter_fails_open_when_the_cache_is_unreachable(limited: Any) -> None:
    _unreachable_cache(limited)
    responses = [_post("10.3.0.5") for _ in range(5)]  # more than the limit of 3
    assert [r.status_code for r in responses] == [200] * 5
    assert "x-limit-remaining" not in responses[0]


def test_sign_in_works_unthrottled_when_the_cache_is_unreachable(settings: Any, alice: Any) -> None:
    _unreachable_cache(settings)
    settings.NP_LOGIN_MAX_FAILURES = 1
    Client(REMOTE_ADDR="10.3.0.6").post("/accounts/login/", {"username": "alice", "password": "wrong"})
    signed_in = Client(REMOTE_ADDR="10.3.0.6").post("/accounts/login/",
                                                    {"username": "alice", "password": "pw-alice"})
    assert signed_in.status_code == 302
