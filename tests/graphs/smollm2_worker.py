"""A REAL inference worker for SmolLM2-135M-Instruct serving a `plt-demo` transcoder set, for the
end-to-end graph tests (tests/browser/test_graph_e2e.py). The pattern of tests/api_inference/conftest.py:
`manage.py inference_worker --config FILE` against the test database, registering its own catalog rows.

The transcoders are random JumpReLU transcoders (width 256) written in the trainer's own format and
cached outside the clone under ~/.cache/neuronpedia/test-transcoders/<VERSION>/ (instant to make, but
kept so every run reads the same files). Their thresholds keep ~60 features active on a short prompt, so
a graph with the page's default parameters takes well under a minute on 2 cores; their decoders are
scaled so feature nodes survive pruning. They explain nothing: the plumbing is what is tested here."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import inference_worker_process, stop

MODEL_ID = "smollm2-135m-instruct"
SET = "plt-demo"
VERSION = "random-w256-t3.0-d30-v1"


def transcoders_path() -> Path:
    """The `current` link of the cached test set (written on first use)."""
    from types import SimpleNamespace

    from tests.inference_worker.graph_sets import write_set

    root = Path(os.environ.get("NP_CACHE_DIR") or Path.home() / ".cache" / "neuronpedia") / "test-transcoders"
    root = root / VERSION / MODEL_ID / SET
    current = root / "current"
    if not (current / ".complete").exists():
        smollm2 = SimpleNamespace(cfg=SimpleNamespace(n_layers=30, d_model=576))  # all save_set reads
        write_set(root, smollm2, model_id=MODEL_ID, set_name=SET, d_transcoder=256, threshold=3.0,
                  dec_norm=30.0, seed=0)
    return current


def start_worker(tmp: Path, django_db_blocker: Any, name: str) -> subprocess.Popen:
    config = {"model_id": MODEL_ID, "model_source": "smollm2", "device": "cpu", "dtype": "float32",
              "token_limit": 64, "max_new_tokens": 16, "graph_token_limit": 32,
              "transcoder_sets": [{"name": SET, "path": str(transcoders_path())}]}
    path = tmp / "worker.json"
    path.write_text(json.dumps(config))
    return inference_worker_process(path, name, OMP_NUM_THREADS="2")


def stop_worker(proc: subprocess.Popen, django_db_blocker: Any) -> None:
    stop(proc)
    with django_db_blocker.unblock():  # rows the worker re-registered after the last flush
        from features.models import InferenceHost, Model

        InferenceHost.objects.filter(model_id=MODEL_ID).delete()
        Model.objects.filter(id=MODEL_ID).delete()


def wait_registered(proc: subprocess.Popen, timeout: float = 300) -> None:
    """Until the worker has (re-)registered in this test's clean database, serving the transcoders."""
    from features.models import SourceSet
    from inference import client as inference

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if inference.live_hosts(MODEL_ID).filter(sources__name=f"0-{SET}").exists():
            # the catalog's view of the set (helper A2's training code makes it so in the product)
            SourceSet.objects.filter(model_id=MODEL_ID, name=SET).update(type="transcoder")
            return
        if proc.poll() is not None:
            pytest.fail("the inference worker died:\n" + (proc.stdout.read() if proc.stdout else ""))
        time.sleep(0.2)
    pytest.fail(f"the inference worker did not register within {timeout:.0f} s")


def wait_job(graph_id: int, timeout: float = 400) -> Any:
    from graphs.models import Graph

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        graph = Graph.objects.select_related("job").get(id=graph_id)
        if graph.status != "PENDING" or (graph.job and graph.job.status in ("FAILED", "CANCELLED")):
            return graph
        time.sleep(0.5)
    pytest.fail(f"graph {graph_id} was not generated within {timeout:.0f} s")


@pytest.fixture(scope="module")
def smollm2_worker(django_db_setup: None, django_db_blocker: Any,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen]:
    proc = start_worker(tmp_path_factory.mktemp("graph-worker"), django_db_blocker, "graph-e2e-worker")
    yield proc
    stop_worker(proc, django_db_blocker)
