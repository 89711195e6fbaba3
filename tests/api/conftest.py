"""Fixtures for the public API tests: API clients per persona (alice = owner, bob = stranger,
anonymous), a source set alice owns, and rate-limit counters isolated per test."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from features import services
from neuronpedia.accounts.services import create_api_key


@pytest.fixture(autouse=True)
def _isolated_rate_limits(settings: Any) -> None:
    """Limits on (even if the test settings turn them off), counted in Redis keys of this test only, so
    reruns within the hour start from zero."""
    settings.NP_RATE_LIMIT_ENABLED = True
    settings.NP_RATE_LIMIT_KEY_PREFIX = f"np:test:{uuid.uuid4().hex}"


def _client(raw_key: str | None = None) -> APIClient:
    client = APIClient()
    if raw_key:
        client.credentials(HTTP_X_API_KEY=raw_key)
    return client


@pytest.fixture
def anon() -> APIClient:
    return _client()


@pytest.fixture
def alice_api(alice: Any) -> APIClient:
    return _client(create_api_key(user=alice)[1])


@pytest.fixture
def bob_api(bob: Any) -> APIClient:
    return _client(create_api_key(user=bob)[1])


@pytest.fixture
def alice_source(alice: Any) -> Any:
    """Alice's own 2-layer model `alice-model` (d_model 4) with source set `alice-sae`."""
    model = services.create_model(user=alice, model_id="alice-model", layers=2, dimension=4)
    source_set = services.create_source_set(user=alice, model=model, name="alice-sae")
    return source_set.sources.get(layer=1)

