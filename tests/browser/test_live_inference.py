"""Browser flows that need a real inference worker: a `manage.py inference_worker` process with the tiny
model built in code and an identity SAE (as tests/inference/test_worker_e2e.py starts it). The pages call
/api/activation/new, /api/search-all, /api/search-topk-by-token and /api/steer (stream: true)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.urls import NoReverseMatch, reverse

from features.models import Feature, Source
from inference import client as inference
from tests.browser.conftest import screenshot
from tests.inference.test_worker_e2e import MODEL_ID, SOURCE, worker, worker_config  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _api_route(name: str) -> None:
    try:
        reverse(name)
    except NoReverseMatch:
        pytest.skip(f"{name} is not deployed yet")


@pytest.fixture
def live_model(worker: Any, settings: Any) -> Source:  # noqa: F811
    """Wait until the worker (re-)registered in this test's clean database; give the source features."""
    settings.INFERENCE_HEARTBEAT_SECONDS = 1
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if inference.live_hosts(MODEL_ID).filter(sources__name=SOURCE).exists():
            break
        assert worker.poll() is None, worker.stdout.read()
        time.sleep(0.2)
    else:
        pytest.fail("the inference worker did not register within 120 s")
    source = Source.objects.get(model_id=MODEL_ID, name=SOURCE)
    Feature.objects.bulk_create([Feature(source=source, index=i, max_act_approx=8.0) for i in range(4)])
    return source


def test_test_custom_text_shows_live_per_token_activations(live_server, page, live_model) -> None:
    _api_route("api-activation-new")
    page.goto(f"{live_server.url}/{MODEL_ID}/{SOURCE}/3")
    form = page.locator("#test-text-form")
    form.locator("textarea:not([disabled])").fill("abc abc")
    form.locator("button").click()
    row = page.locator("#test-text-out .activation.tested")
    row.wait_for()
    assert row.locator(".tok").count() >= 2
    assert "max" in page.locator("#test-max").inner_text()
    assert page.locator("#no-worker").count() == 0
    page.click("#similar-live-btn")  # live decoder cos-sim through the worker (identity SAE: none similar)
    page.locator("#similar-live ol.similar").wait_for()
    assert "unavailable" not in page.locator("#similar-live").inner_text()


def test_search_by_text_and_token_drill_down(live_server, page, live_model) -> None:
    _api_route("api-search-all")
    page.goto(f"{live_server.url}/search?model={MODEL_ID}&source_set=res-id")
    page.fill("#search-all-form textarea", "the cat sat")
    page.click("#search-all-form button")
    rows = page.locator("#sa-results tbody tr")
    rows.first.wait_for()
    assert rows.count() >= 1
    assert SOURCE in rows.first.inner_text()
    rows.first.locator(".show-tokens").click()
    assert page.locator("#sa-detail .tok").count() >= 3
    page.locator("#sa-tokens .pick").nth(1).click()
    page.locator("#sa-tokens .pick.picked").wait_for()


def test_topk_by_token(live_server, page, live_model) -> None:
    _api_route("api-search-topk-by-token")
    page.goto(f"{live_server.url}/search-topk?model={MODEL_ID}&source={SOURCE}")
    page.fill("#topk-form textarea", "abc")
    page.click("#topk-form button")
    page.locator("#topk-grid .topk-col").first.wait_for()
    assert page.locator("#topk-grid .topk-item").count() >= 3


def test_steering_streams_default_and_steered_then_share_link_reloads(live_server, page, live_model) -> None:
    _api_route("api-steer")
    page.goto(f"{live_server.url}/steer?model={MODEL_ID}&features={SOURCE}:1:8&n_tokens=12&temperature=0.7")
    assert page.locator("#steer-features tbody tr").count() == 1
    page.fill("#steer-prompt", "Once")
    page.click("#steer-run")
    page.locator("#share").wait_for(state="visible", timeout=40_000)
    default = page.locator("#out-DEFAULT").inner_text()
    steered = page.locator("#out-STEERED").inner_text()
    assert default.startswith("Once")
    assert steered.startswith("Once")
    assert int(page.evaluate("document.body.dataset.steerFrames || '0'")) >= 2  # streamed, not one reply
    screenshot(page, "steer")
    share = page.locator("#share-link").get_attribute("href")
    assert re.fullmatch(r"/steer/[a-z0-9]+", share)
    page.goto(live_server.url + share)
    assert page.locator("#out-DEFAULT").inner_text() == default
    assert page.locator("#out-STEERED").inner_text() == steered
    assert f"{SOURCE}:1" in page.locator("#shared-result").inner_text()
