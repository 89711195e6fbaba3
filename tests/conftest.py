"""Shared fixtures. Tests run on the real PostgreSQL (pgvector) and Redis that `bin/np test` starts;
the services are started here too, so `pytest` alone works."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("django"):
        return
    _retry_flush_on_deadlock()
    from neuronpedia.lib.env import ConfigError
    from neuronpedia.preflight import ensure_services

    try:
        ensure_services()
    except ConfigError as exc:
        raise pytest.UsageError(f"services unavailable: {exc}") from None


def _retry_flush_on_deadlock() -> None:
    """Transactional tests end with a TRUNCATE of every table. Processes outside the test (the inference
    worker re-registering, a live-server request still in flight) can take locks on two of those tables in
    the other order, and PostgreSQL then aborts the TRUNCATE as a deadlock victim. The victim's work is
    rolled back, so the flush is simply run again."""
    import time

    from django.core.management.base import CommandError
    from django.db import OperationalError
    from django.test.testcases import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self: TransactionTestCase, attempts: int = 5) -> None:
        for attempt in range(1, attempts + 1):
            try:
                original(self)
            except CommandError as exc:
                deadlock = isinstance(exc.__cause__, OperationalError) and "deadlock" in str(exc.__cause__)
                if not deadlock or attempt == attempts:
                    raise
                time.sleep(0.2 * attempt)
            else:
                return

    TransactionTestCase._fixture_teardown = _fixture_teardown  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    """Owner persona."""
    return django_user_model.objects.create_user("alice", "alice@example.com", "pw-alice")


@pytest.fixture
def bob(django_user_model: Any) -> Any:
    """Stranger persona: must get 403/404 on alice's private things."""
    return django_user_model.objects.create_user("bob", "bob@example.com", "pw-bob")


@pytest.fixture
def admin_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root")


@pytest.fixture
def catalog(db: None) -> Iterator[dict[str, Any]]:
    from tests import factories

    return factories.make_catalog()
