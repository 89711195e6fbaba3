"""A REAL inference worker process for the live-inference API tests (the pattern of
tests/inference/test_worker_e2e.py): `manage.py inference_worker` serving a tiny model built in code
with an identity SAE saved by SAE-Lens, started once for this package against the test database. The
worker registers its Model/SourceSet/Source rows itself (inference.client.ensure_catalog_for_worker)
and re-registers within a heartbeat after each transactional test flushes the tables.

The identity SAE (d_in 64, d_sae 128) has W_enc = [I, -I]: feature i < 64 is ReLU(h_i) of the residual
stream after block 0 and feature 64 + i is ReLU(-h_i), which gives the tests known answers."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from inference import client as inference
from neuronpedia.accounts.services import create_api_key
from tests.factories import identity_sae
from tests.support import inference_worker_process, stop

MODEL_ID = "tiny-api"
SOURCE_SET = "res-id"
SOURCE = "0-res-id"
HOOK = "blocks.0.hook_resid_post"
D_MODEL = 64
MAX_NEW_TOKENS = 24
TOKEN_LIMIT = 64


@pytest.fixture(scope="session")
def worker_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("api-worker")
    identity_sae(HOOK, D_MODEL).save_model(str(folder / "sae"))
    config = {"model_id": MODEL_ID, "model_source": "tiny", "device": "cpu",
              "token_limit": TOKEN_LIMIT, "max_new_tokens": MAX_NEW_TOKENS, "extra": {"seed": 0},
              "source_sets": [{"name": SOURCE_SET, "sources": [{"id": SOURCE, "path": str(folder / "sae")}]}]}
    path = folder / "worker.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="session")
def worker(django_db_setup: None, django_db_blocker: Any, worker_config: Path) -> Iterator[subprocess.Popen]:
    proc = inference_worker_process(worker_config, "api-inference-worker")
    yield proc
    stop(proc)
    with django_db_blocker.unblock():  # rows the worker re-registered after the last flush
        from features.models import InferenceHost, Model

        InferenceHost.objects.filter(model_id=MODEL_ID).delete()
        Model.objects.filter(id=MODEL_ID).delete()


@pytest.fixture
def live(worker: subprocess.Popen, transactional_db: None, settings: Any) -> None:
    """Wait until the worker has (re-)registered in this test's clean database."""
    settings.INFERENCE_HEARTBEAT_SECONDS = 1
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if inference.live_hosts(MODEL_ID).filter(sources__name=SOURCE).exists():
            return
        if worker.poll() is not None:
            pytest.fail("the inference worker died:\n" + (worker.stdout.read() if worker.stdout else ""))
        time.sleep(0.1)
    pytest.fail("the inference worker did not register within 120 s")


class Spy:
    """Counts calls of inference.client.run_inference / run_inference_async (the only ways the
    services reach a worker without streaming) and of steering.services._start_task (streaming),
    keeping their payloads."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def operations(self, name: str) -> list[dict[str, Any]]:
        return [payload for op, payload in self.calls if op == name]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    from steering import services as steering_services

    found = Spy()
    real_run, real_start = inference.run_inference, steering_services._start_task
    real_run_async = inference.run_inference_async

    def run(model_id: str, operation: str, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        found.calls.append((operation, payload))
        return real_run(model_id, operation, payload, **kwargs)

    async def run_async(model_id: str, operation: str, payload: dict[str, Any], **kwargs: Any) -> Any:
        found.calls.append((operation, payload))
        return await real_run_async(model_id, operation, payload, **kwargs)

    def start(model_id: str, payload: dict[str, Any], *args: Any) -> Any:
        found.calls.append(("steer-stream", payload))
        return real_start(model_id, payload, *args)

    monkeypatch.setattr(inference, "run_inference", run)
    monkeypatch.setattr(inference, "run_inference_async", run_async)
    monkeypatch.setattr(steering_services, "_start_task", start)
    return found


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def alice_api(alice: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=create_api_key(user=alice)[1])
    return client


@pytest.fixture
def fake_llm(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The scripted OpenAI-compatible server of tests/autointerp (real HTTP on 127.0.0.1)."""
    from tests.autointerp.conftest import FakeLLM

    fake = FakeLLM()
    fake.thread.start()
    provider = {"NP_OPENAI_BASE_URL": fake.base_url, "NP_OPENAI_API_KEY": "sk-test-secret-key-1234",
                "NP_EXPLAINER_MODEL": "fake-gpt"}
    for name, value in provider.items():
        setattr(settings, name, value)
        monkeypatch.setenv(name, value)  # the worker processes a test starts read their settings from it
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
