"""steering.services without a worker: racing requests share one stored row per cache key, and a stream
whose worker never answers ends with a timeout error instead of blocking."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync
from django.conf import settings

from inference import client as inference
from steering import services
from steering.models import SteerOutput, SteerOutputFeature, SteerType
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ghost(transactional_db: None) -> Any:
    """A model with a feature and a host row that looks live, but no process reads its queue."""
    model = factories.make_model("tiny-ghost", layers=2, dimension=4)
    source = factories.make_source(model, layer=0, set_name="res-x")
    feature = factories.make_feature(source, 1)
    inference.register_host(name="ghost", model=model, device="cpu", dtype="float32",
                            source_names=[source.name])
    yield feature
    redis.Redis.from_url(settings.REDIS_URL).delete("inference.tiny-ghost")


def _plan(feature: Any, strength: float = 4.0) -> services.SteerPlan:
    return services.plan_steer(model_id="tiny-ghost", features=[(feature, strength)], prompt="Once",
                               temperature=0.5, n_tokens=4, seed=1, check_live=False)


def _halves(steered: str, default: str) -> dict[str, services.GeneratedHalf]:
    return {SteerType.STEERED: services.GeneratedHalf(SteerType.STEERED, steered, None, None, "Once"),
            SteerType.DEFAULT: services.GeneratedHalf(SteerType.DEFAULT, default, None, None, "Once")}


def test_racing_requests_share_the_rows_of_whoever_stored_first(ghost: Any) -> None:
    first, second = _plan(ghost), _plan(ghost)  # both planned before either stored: both miss
    assert first.missing == second.missing == [SteerType.STEERED, SteerType.DEFAULT]
    a = services._finish(first, _halves("Once upon", "Once more"), None)
    b = services._finish(second, _halves("Once again", "Once else"), None)
    assert (b.steered.pk, b.default.pk) == (a.steered.pk, a.default.pk)
    assert b.steered.output_text == "Once upon"
    assert SteerOutput.objects.count() == 2
    assert SteerOutputFeature.objects.get().strength == 4.0
    assert a.steered.connected_default_output_id == a.default.pk

    third = _plan(ghost, strength=6.0)  # a new strength: only STEERED is missing
    assert third.missing == [SteerType.STEERED]
    assert third.jobs() == [[SteerType.STEERED]]
    assert third.params.payload(third.jobs()[0])["features"] == [{"source": "0-res-x", "index": 1,
                                                                   "strength": 6.0}]


def test_a_stream_nobody_answers_ends_with_a_timeout(ghost: Any) -> None:
    plan = services.plan_steer(model_id="tiny-ghost", features=[(ghost, 4.0)], prompt="Once",
                               temperature=0.5, n_tokens=4, seed=2)  # the host row passes the live check
    started = time.monotonic()
    async def collect() -> list[services.StreamEvent]:
        started = await services.astart_stream(plan, idle_timeout=1.5)
        return [event async for event in services.astream_steer(started)]

    events = async_to_sync(collect)()
    assert time.monotonic() - started < 10
    assert [e.kind for e in events] == ["error"]
    assert events[0].error is not None
    assert events[0].error.status == 504
    assert "timed out" in str(events[0].error)
    assert not SteerOutput.objects.exists()
