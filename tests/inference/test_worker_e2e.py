"""Every inference operation through the whole path: web side -> Redis -> a real
`manage.py inference_worker` process (tiny model built in code + an SAE-Lens SAE on disk) -> result,
compared with the same operation called in-process."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from features.models import InferenceHost, Source
from inference import client as inference
from tests.factories import identity_sae
from tests.support import inference_worker_process, stop

MODEL_ID = "tiny-e2e"
SOURCE = "0-res-id"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def worker_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("worker")
    identity_sae("blocks.0.hook_resid_post").save_model(str(folder / "sae"))
    config = {"model_id": MODEL_ID, "model_source": "tiny", "device": "cpu",
              "token_limit": 64, "max_new_tokens": 16, "extra": {"seed": 0},
              "source_sets": [{"name": "res-id", "sources": [{"id": SOURCE,
                                                              "path": str(folder / "sae")}]}]}
    path = folder / "worker.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def worker(django_db_setup: None, django_db_blocker: Any, worker_config: Path) -> Any:
    proc = inference_worker_process(worker_config, "e2e-worker")
    yield proc
    stop(proc)
    with django_db_blocker.unblock():  # rows the worker re-registered after the last flush
        from features.models import InferenceHost, Model

        InferenceHost.objects.filter(model_id=MODEL_ID).delete()
        Model.objects.filter(id=MODEL_ID).delete()


@pytest.fixture
def live(worker: subprocess.Popen, settings: Any) -> None:
    """Wait until the worker has (re-)registered in this test's clean database."""
    settings.INFERENCE_HEARTBEAT_SECONDS = 1
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if inference.live_hosts(MODEL_ID).filter(sources__name=SOURCE).exists():
            return
        assert worker.poll() is None, worker.stdout.read()
        time.sleep(0.2)
    pytest.fail("the inference worker did not register within 90 s")


@pytest.fixture(scope="module")
def local() -> Any:
    """The same model and SAE in this process, for the in-process reference results."""
    from inference_worker.models import build_tiny_model
    from inference_worker.saes import SourceRegistry, source_from_sae

    model = build_tiny_model(seed=0)
    registry = SourceRegistry([source_from_sae(SOURCE, identity_sae("blocks.0.hook_resid_post"))])
    return model, registry


def test_the_worker_registers_its_model_and_sources(live: None) -> None:
    host = InferenceHost.objects.get(name="e2e-worker")
    assert host.queue == f"inference.{MODEL_ID}"
    assert host.device == "cpu"
    source = Source.objects.get(model_id=MODEL_ID, name=SOURCE)
    assert (source.hook_name, source.num_features, source.layer) == ("blocks.0.hook_resid_post",
                                                                     128, 0)


def test_activation_single_matches_in_process(live: None, local: Any) -> None:
    from inference_worker.ops import activation_single

    model, registry = local
    remote = inference.run_inference(MODEL_ID, "activation_single",
                                     {"prompt": "hello world", "source": SOURCE, "index": 3},
                                     source_names=[SOURCE])
    expected = activation_single(model, "hello world", source=registry.get(SOURCE), index=3)
    assert remote["tokens"] == list(expected.tokens.strings)
    assert remote["activation"]["maxValueIndex"] == expected.max_value_index
    assert remote["activation"]["values"] == pytest.approx(list(expected.values), abs=1e-5)


def test_search_all_topk_tokenize_and_cossim_through_the_worker(live: None, local: Any) -> None:
    from inference_worker.ops import search_all

    model, registry = local
    payload = {"prompt": "the cat sat", "sourceSet": "res-id", "numResults": 5}
    remote = inference.run_inference(MODEL_ID, "search_all", payload)
    expected = search_all(model, registry, "the cat sat", source_set="res-id", num_results=5)
    assert [(a["source"], a["index"]) for a in remote["activations"]] == [
        (a.source, a.index) for a in expected.activations]
    topk = inference.run_inference(MODEL_ID, "topk_by_token",
                                   {"prompt": "abc", "source": SOURCE, "topK": 3})
    assert [r["tokenPosition"] for r in topk["results"]] == [1, 2, 3]
    tokens = inference.run_inference(MODEL_ID, "tokenize", {"text": "ab"})
    assert tokens["tokenStrings"][-2:] == ["a", "b"]
    cossim = inference.run_inference(MODEL_ID, "topk_decoder_cossim",
                                     {"source": SOURCE, "index": 7, "numResults": 3})
    assert cossim["topkDecoderCossimFeatures"][0]["feature"]["index"] == 7
    vector = inference.run_inference(MODEL_ID, "sae_vector", {"source": SOURCE, "index": 7})
    assert vector["vector"] == [1.0 if i == 7 else 0.0 for i in range(64)]
    assert vector["hookName"] == "blocks.0.hook_resid_post"


def test_steering_through_the_worker_is_deterministic_and_streams(live: None) -> None:
    key = uuid.uuid4().hex
    payload = {"prompt": "Once", "features": [{"source": SOURCE, "index": 1, "strength": 8.0}],
               "nCompletionTokens": 6, "temperature": 0.7, "seed": 3, "nLogprobs": 2,
               "streamKey": key}
    first = inference.run_inference(MODEL_ID, "steer", payload)
    second = inference.run_inference(MODEL_ID, "steer", {**payload, "streamKey": None})
    by_type = {o["type"]: o for o in first["outputs"]}
    assert set(by_type) == {"STEERED", "DEFAULT"}
    assert first["outputs"] == second["outputs"]
    entries = redis.Redis.from_url(settings.REDIS_URL).xrange(f"np:stream:{key}")
    assert len(entries) >= 1
    assert entries[-1][1][b"done"] == b"1"
    assert json.loads(entries[-1][1][b"data"])["outputs"] == first["outputs"]


def test_chat_steering_through_the_worker(live: None) -> None:
    payload = {"messages": [{"role": "user", "content": "hi"}], "nCompletionTokens": 4,
               "features": [{"source": SOURCE, "index": 2, "strength": 5.0}],
               "steerSpecialTokens": False, "temperature": 0, "seed": 1}
    result = inference.run_inference(MODEL_ID, "steer", payload)
    assert "<|im_start|>user" in result["input"]["raw"]
    assert {o["type"] for o in result["outputs"]} == {"STEERED", "DEFAULT"}


def test_a_broken_limit_is_a_400_naming_the_limit(live: None) -> None:
    with pytest.raises(inference.InferenceError) as info:
        inference.run_inference(MODEL_ID, "activation_single",
                                {"prompt": "x" * 200, "source": SOURCE, "index": 0})
    assert info.value.status == 400
    assert "token" in str(info.value).lower()


def test_an_unknown_source_is_a_404(live: None) -> None:
    with pytest.raises(inference.InferenceError) as info:
        inference.run_inference(MODEL_ID, "activation_single",
                                {"prompt": "x", "source": "5-nope", "index": 0})
    assert info.value.status == 404


def test_no_live_worker_is_a_clear_503(db: None) -> None:
    with pytest.raises(inference.NoInferenceWorker, match="no inference worker is serving model"):
        inference.run_inference("gpt2-small", "tokenize", {"text": "hi"})
