"""Faults and load on the inference path, against REAL processes: the ASGI server that `bin/np up` runs
(gunicorn + uvicorn worker, one process) and a real `manage.py inference_worker` (tiny model + identity
SAE, steering up to 200 tokens: a few seconds per request on 2 cores, long enough to be caught in flight).

Bounds asserted (shared 2-core machine, so with slack):
- a killed worker (SIGKILL mid-request): every request in flight answers 503 within 6 s of the kill
  (liveness TTL 4 s + a 0.5 s poll; typically 3-5 s); a new request answers 503 at once (< 1.5 s);
- a full queue (INFERENCE_QUEUE_LIMIT=3 here): 503 + Retry-After in < 1.5 s;
- a cheap page while every inference slot is stuck: < 1 s each (the load benchmark measures p95);
- a message whose deadline passed is never run by the worker; its caller got 504 at the deadline;
- Redis unreachable: JSON 503 in < 2 s for activation/new and both steers, clean text on pages.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection

from features.models import Source
from inference import client as inference
from tests import factories
from tests.factories import identity_sae
from tests.support import child_database_url, inference_worker_process, kill, stop

ROOT = Path(__file__).resolve().parents[2]
MODEL_ID = "tiny-fault"
SOURCE = "0-res-id"
HOOK = "blocks.0.hook_resid_post"
QUEUE_LIMIT = 3
LONG_TOKENS = 200  # ~2-5 s of generation on the tiny model

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(db: dict[str, Any], **extra: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "neuronpedia.settings.test",
            "INFERENCE_HEARTBEAT_SECONDS": "1", "OMP_NUM_THREADS": "1",
            "INFERENCE_QUEUE_LIMIT": str(QUEUE_LIMIT), "INFERENCE_RETRY_AFTER_SECONDS": "3",
            "DATABASE_URL": child_database_url(), **extra}


@pytest.fixture(scope="module")
def db_settings(django_db_setup: None, django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        return dict(connection.settings_dict)


@pytest.fixture(scope="module")
def worker_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fault-worker")
    identity_sae(HOOK).save_model(str(folder / "sae"))
    config = {"model_id": MODEL_ID, "model_source": "tiny", "device": "cpu", "token_limit": 256,
              "max_new_tokens": LONG_TOKENS, "extra": {"seed": 0},
              "source_sets": [{"name": "res-id",
                               "sources": [{"id": SOURCE, "path": str(folder / "sae")}]}]}
    path = folder / "worker.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def worker(db_settings: dict[str, Any], worker_config: Path,
           django_db_blocker: Any) -> Iterator[subprocess.Popen]:
    proc = inference_worker_process(worker_config, "fault-worker", INFERENCE_QUEUE_LIMIT=str(QUEUE_LIMIT),
                                    INFERENCE_RETRY_AFTER_SECONDS="3")
    yield proc
    stop(proc)
    with django_db_blocker.unblock():
        from features.models import InferenceHost, Model

        InferenceHost.objects.filter(model_id=MODEL_ID).delete()
        Model.objects.filter(id=MODEL_ID).delete()


@pytest.fixture(scope="module")
def server(db_settings: dict[str, Any]) -> Iterator[str]:
    """The ASGI server as `bin/np up` starts it (gunicorn + uvicorn worker), one process."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "neuronpedia.asgi:application", "-k",
                             "uvicorn_worker.UvicornWorker", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                             "--timeout", "300"], cwd=ROOT, env=_env(db_settings),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/api/does-not-exist", timeout=2)
            break
        except httpx.TransportError:
            assert proc.poll() is None, "the ASGI server exited"
            time.sleep(0.2)
    yield base
    stop(proc)


@pytest.fixture
def live(worker: subprocess.Popen, settings: Any) -> None:
    settings.INFERENCE_HEARTBEAT_SECONDS = 1
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if inference.live_hosts(MODEL_ID).filter(sources__name=SOURCE).exists():
            factories.make_feature(Source.objects.get(model_id=MODEL_ID, name=SOURCE), 3)
            return
        if worker.poll() is not None:
            pytest.fail("the inference worker died:\n" + (worker.stdout.read() if worker.stdout else ""))
        time.sleep(0.1)
    pytest.fail("the inference worker did not register within 120 s")


def _steer(seed: int, n_tokens: int = LONG_TOKENS, stream: bool = False) -> dict[str, Any]:
    return {"modelId": MODEL_ID, "prompt": "Once upon", "temperature": 0.0, "n_tokens": n_tokens,
            "freq_penalty": 0, "seed": seed, "strength_multiplier": 1, "stream": stream,
            "features": [{"modelId": MODEL_ID, "layer": SOURCE, "index": 3, "strength": 4.0}]}


class Timed(threading.Thread):
    """One HTTP request in a thread: status, headers, body, when it ended."""

    def __init__(self, method: str, url: str, **kwargs: Any) -> None:
        super().__init__(daemon=True)
        self.method, self.url, self.kwargs = method, url, kwargs
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = ""
        self.ended = 0.0

    def run(self) -> None:
        try:
            response = httpx.request(self.method, self.url, timeout=120, **self.kwargs)
            self.status, self.headers, self.body = response.status_code, dict(response.headers), response.text
        except httpx.HTTPError as exc:
            self.body = f"transport error: {exc}"
        self.ended = time.monotonic()


def _claimed() -> list[str]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    return [k.decode() for k in client.scan_iter(match=inference.CLAIM_PREFIX + "*")]


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _flush_claims() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match="np:claim:*"):
        client.delete(key)


def test_a_full_queue_is_503_retry_after_and_cheap_pages_stay_fast(live: None, server: str) -> None:
    _flush_claims()
    stuck = [Timed("POST", server + "/api/steer", json=_steer(seed=100 + i)) for i in range(QUEUE_LIMIT)]
    for request in stuck:
        request.start()
    _wait_for(lambda: inference.in_flight(MODEL_ID) == QUEUE_LIMIT, 20, "the queue to fill")
    # the queue is full: one more is refused at once, with Retry-After
    started = time.monotonic()
    over = httpx.post(server + "/api/activation/new", timeout=30, json={
        "feature": {"modelId": MODEL_ID, "source": SOURCE, "index": 3}, "customText": "hello"})
    assert over.status_code == 503, over.text
    assert time.monotonic() - started < 1.5
    assert over.headers["Retry-After"] == "3"
    assert "queue" in over.json()["message"]
    # pages that do not need inference are served while every inference slot waits
    timings = []
    for _ in range(5):
        started = time.monotonic()
        page = httpx.get(server + f"/{MODEL_ID}/{SOURCE}/3", timeout=30)
        timings.append(time.monotonic() - started)
        assert page.status_code == 200
    still_waiting = sum(1 for r in stuck if r.is_alive())
    assert still_waiting >= 1, "the inference requests ended before the pages were measured"
    assert max(timings) < 1.0, timings
    for request in stuck:
        request.join(120)
        assert request.status == 200, request.body
    assert inference.in_flight(MODEL_ID) == 0


def test_a_stale_message_is_dropped_unrun_and_its_caller_got_504(live: None) -> None:
    _flush_claims()
    before = inference.stats(MODEL_ID)
    busy = [inference.Call(MODEL_ID, "steer", {"prompt": "Once", "nCompletionTokens": LONG_TOKENS, "seed": i,
                                               "features": [{"source": SOURCE, "index": 3, "strength": 4.0}]},
                           timeout=90) for i in range(3)]
    try:
        for call in busy:
            inference.admit(call)  # the (solo) worker is busy for a while: the stale call waits behind
        _wait_for(lambda: bool(_claimed()), 20, "the worker to start the first busy call")
        stale_stream = f"fault-stale-{time.time_ns()}"
        started = time.monotonic()
        with pytest.raises(inference.InferenceError) as caught:
            inference.run_inference(MODEL_ID, "steer", {
                "prompt": "Once", "nCompletionTokens": 4, "streamKey": stale_stream,
                "features": [{"source": SOURCE, "index": 3, "strength": 4.0}]}, timeout=0.5)
        assert caught.value.status == 504
        assert time.monotonic() - started < 2.0
        for call in busy:
            assert inference.wait(call)["ok"]
    finally:
        for call in busy:
            inference.release(call)
    # the worker took the stale message after the busy ones and dropped it without generating
    _wait_for(lambda: inference.stats(MODEL_ID).get("dropped_stale", 0) > before.get("dropped_stale", 0),
              30, "the stale message to be dropped")
    client = redis.Redis.from_url(settings.REDIS_URL)
    assert client.xlen("np:stream:" + stale_stream) == 0
    assert inference.stats(MODEL_ID).get("ran", 0) == before.get("ran", 0) + len(busy)  # only those ran


def test_redis_unreachable_is_a_fast_json_503_and_a_clean_page(client: Any, settings: Any) -> None:
    model = factories.make_model("tiny-noredis", layers=2, dimension=64)
    source = factories.make_source(model, layer=0, set_name="res-x")
    factories.make_feature(source, 1)
    settings.REDIS_URL = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    requests = [
        ("/api/activation/new", {"feature": {"modelId": "tiny-noredis", "source": source.name, "index": 1},
                                 "customText": "hi"}),
        ("/api/steer", {**_steer(1, 8), "modelId": "tiny-noredis",
                        "features": [{"modelId": "tiny-noredis", "layer": source.name, "index": 1,
                                      "strength": 2.0}]}),
        ("/api/steer", {**_steer(1, 8, stream=True), "modelId": "tiny-noredis",
                        "features": [{"modelId": "tiny-noredis", "layer": source.name, "index": 1,
                                      "strength": 2.0}]}),
    ]
    for path, body in requests:
        started = time.monotonic()
        response = client.post(path, body, content_type="application/json")
        assert time.monotonic() - started < 2.0
        assert response.status_code == 503, response.content
        assert response["Content-Type"] == "application/json"
        assert "Redis" in response.json()["message"]
        assert response["Retry-After"]
    panel = client.get(f"/tiny-noredis/{source.name}/1/panel/live")
    assert panel.status_code == 200
    assert "Live inference is offline" in panel.content.decode()  # said to users; the page still renders


def test_a_killed_worker_is_reported_within_seconds(live: None, server: str,
                                                    worker: subprocess.Popen) -> None:
    """Last in this module: it kills the module's worker."""
    _flush_claims()
    running = Timed("POST", server + "/api/steer", json=_steer(seed=200))
    running.start()
    _wait_for(lambda: bool(_claimed()), 20, "the worker to claim the first request")
    queued = [Timed("POST", server + "/api/activation/new", json={
                  "feature": {"modelId": MODEL_ID, "source": SOURCE, "index": 3}, "customText": "hello"}),
              Timed("POST", server + "/api/steer", json=_steer(seed=201, stream=True))]
    for request in queued:
        request.start()
    _wait_for(lambda: inference.in_flight(MODEL_ID) == 3, 10, "three requests in flight")
    assert running.is_alive()
    killed = time.monotonic()
    kill(worker)
    worker.wait(10)
    for request in (running, queued[0]):
        request.join(30)
        assert request.status == 503, request.body
        assert request.ended - killed < 6.0, request.ended - killed
        assert request.headers.get("retry-after")
    assert "stopped while running this request" in json.loads(running.body)["message"]
    stream = queued[1]
    stream.join(30)
    assert stream.ended - killed < 6.0
    if stream.status == 200:  # its headers went out before the kill: the stream ends with an error frame
        chunks = [c for c in stream.body.split("\n\n") if c.startswith("data: ")]
        frames = [json.loads(c[len("data: "):]) for c in chunks]
        assert frames[-1]["done"], frames
        assert frames[-1]["status"] == 503, frames
    else:
        assert stream.status == 503
    # new requests: a 503 at once; the catalog row stays but is not live
    started = time.monotonic()
    again = httpx.post(server + "/api/activation/new", timeout=30, json={
        "feature": {"modelId": MODEL_ID, "source": SOURCE, "index": 3}, "customText": "hello"})
    assert again.status_code == 503
    assert time.monotonic() - started < 1.5
    assert not inference.live_hosts(MODEL_ID).exists()
    assert inference.in_flight(MODEL_ID) == 0
