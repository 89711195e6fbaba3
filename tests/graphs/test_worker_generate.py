"""The worker's graph job body (inference.tasks.graphs.run_graph_job) on a tiny model with random
transcoders written in the trainer's format: a requested graph ends READY with real nodes and links and
the job DONE with progress; failures (transcoders not trained, prompt too long, cancel) end the job and
the graph FAILED with a readable reason; re-runs are no-ops or overwrite. Plus the graph_intervene
operation through the task layer (inference.tasks.operations._reply), with its error statuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graphs import services
from graphs.format import feature_coordinates
from graphs.models import Graph
from inference.tasks import graphs as graph_tasks
from inference_worker.config import WorkerConfig
from inference_worker.runtime import clear_caches, get_worker
from neuronpedia.jobs.models import Job
from neuronpedia.lib.jobs import JobStatus
from tests.graphs.conftest import MODEL_ID
from tests.inference_worker.graph_sets import write_set

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:Full backward hook:UserWarning")]

SMALL = services.GenerationParams(max_n_logits=3, max_feature_nodes=32, batch_size=16)


@pytest.fixture
def no_send(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    from neuronpedia.celery import app

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: sent.append({"name": name, **kw}))
    return sent


@pytest.fixture
def worker_factory(tmp_path: Path) -> Any:
    made = []

    def make(trained: bool = True, **extra: Any) -> Any:
        clear_caches()
        cfg = WorkerConfig.from_dict({
            "model_id": MODEL_ID, "model_source": "tiny", "device": "cpu",
            "transcoder_sets": [{"name": "plt-demo", "path": str(tmp_path / f"plt{len(made)}" / "current")}],
            **extra})
        worker = get_worker(cfg)
        if trained:
            write_set(tmp_path / f"plt{len(made)}", worker.model, model_id=MODEL_ID)
        made.append(worker)
        return worker

    yield make
    clear_caches()


def _request(demo: dict[str, Any], prompt: str = "the cat sat on the") -> Graph:
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):  # the send happens on commit
        graph, created = services.request_graph(model=demo["model"], prompt=prompt, params=SMALL)
    assert created
    return graph


def test_job_generates_and_stores_a_ready_graph(demo: Any, no_send: Any, worker_factory: Any) -> None:
    worker = worker_factory()
    graph = _request(demo)
    (sent,) = no_send
    assert sent["name"] == graph_tasks.TASK_NAME == "inference_worker.tasks.generate_graph"
    assert sent["kwargs"] == {"job_id": graph.job_id}
    assert sent["queue"] == f"inference.{MODEL_ID}"
    messages: list[str] = []
    assert graph_tasks.run_graph_job(graph.job_id, worker=worker, log=messages.append)
    graph.refresh_from_db()
    job = Job.objects.get(id=graph.job_id)
    assert job.status == JobStatus.DONE
    assert (job.done, job.total) == (graph_tasks.N_STEPS, graph_tasks.N_STEPS)
    assert job.result["nodes"] == graph.n_nodes > 0
    assert job.result["links"] == graph.n_links > 0
    assert job.result["stage"] == "done"
    # circuit-tracer's own phases were reported as they ran
    assert any(m.startswith("Phase 0") for m in messages)
    assert any(m.startswith("Phase 4") for m in messages)
    assert graph.status == "READY"
    data = graph.to_graph_json()
    types = {n["feature_type"] for n in data["nodes"]}
    assert {"embedding", "logit", "cross layer transcoder"} <= types
    feature = next(n for n in data["nodes"] if n["feature_type"] == "cross layer transcoder")
    layer, _pos, index = feature_coordinates(feature)
    assert 0 <= layer < 2
    assert 0 <= index < 64
    assert data["metadata"]["scan"] == "plt-demo"
    settings = data["metadata"]["generation_settings"]
    assert (settings["max_feature_nodes"], settings["max_n_logits"]) == (32, 3)
    assert data["metadata"]["info"]["generator"]["circuit_tracer"] == "0.5.0"
    ids = {n["node_id"] for n in data["nodes"]}
    assert all(link["source"] in ids and link["target"] in ids for link in data["links"])

    # a DONE job is a no-op (a duplicate message); a re-queued one runs again and overwrites
    assert not graph_tasks.run_graph_job(graph.job_id, worker=worker)
    Job.objects.filter(id=graph.job_id).update(status=JobStatus.QUEUED)
    Graph.objects.filter(id=graph.id).update(n_nodes=0)
    assert graph_tasks.run_graph_job(graph.job_id, worker=worker)
    graph.refresh_from_db()
    assert graph.n_nodes == len(data["nodes"])


def test_graph_endpoints_serve_the_generated_graph(demo: Any, no_send: Any, worker_factory: Any,
                                                   client: Any) -> None:
    worker = worker_factory()
    graph = _request(demo)
    graph_tasks.run_graph_job(graph.job_id, worker=worker)
    resp = client.get(f"/api/graph/{MODEL_ID}/{graph.slug}")
    assert resp.status_code == 200
    assert resp.json()["status"] == "READY"
    page = client.get(f"/{MODEL_ID}/graph?slug={graph.slug}")
    assert page.status_code == 200


def test_untrained_transcoders_fail_the_job_and_graph_readably(demo: Any, no_send: Any,
                                                                worker_factory: Any) -> None:
    worker = worker_factory(trained=False)
    graph = _request(demo)
    assert not graph_tasks.run_graph_job(graph.job_id, worker=worker)
    graph.refresh_from_db()
    job = Job.objects.get(id=graph.job_id)
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("transcoders plt-demo are not trained yet")
    assert graph.status == "FAILED"
    assert graph.metadata["error"] == job.error
    # once trained, the same job re-queued succeeds without a new worker
    write_set(Path(worker.config.transcoder_sets[0].path).parent, worker.model, model_id=MODEL_ID)
    Job.objects.filter(id=graph.job_id).update(status=JobStatus.QUEUED)
    assert graph_tasks.run_graph_job(graph.job_id, worker=worker)
    graph.refresh_from_db()
    assert graph.status == "READY"


def test_too_long_prompt_fails_readably(demo: Any, no_send: Any, worker_factory: Any) -> None:
    worker = worker_factory(graph_token_limit=8)
    graph = _request(demo, prompt="a prompt that is much longer than eight characters")
    assert not graph_tasks.run_graph_job(graph.job_id, worker=worker)
    job = Job.objects.get(id=graph.job_id)
    assert job.status == JobStatus.FAILED
    assert "the prompt is too long" in job.error
    assert "at most 8" in job.error
    assert Graph.objects.get(id=graph.id).status == "FAILED"


def test_wrong_model_and_unknown_set_fail(demo: Any, no_send: Any, worker_factory: Any) -> None:
    worker = worker_factory()
    graph = _request(demo)
    Job.objects.filter(id=graph.job_id).update(params={**graph.job.params, "model_id": "gpt2-small"})
    assert not graph_tasks.run_graph_job(graph.job_id, worker=worker)
    assert "is for model 'gpt2-small'" in Job.objects.get(id=graph.job_id).error
    graph2 = _request(demo, prompt="another prompt")
    Job.objects.filter(id=graph2.job_id).update(params={**graph2.job.params, "source_set": "clt-x"})
    assert not graph_tasks.run_graph_job(graph2.job_id, worker=worker)
    assert "no transcoder set 'clt-x'" in Job.objects.get(id=graph2.job_id).error


def test_cancel_requested_while_running_ends_cancelled(demo: Any, no_send: Any, worker_factory: Any) -> None:
    worker = worker_factory()
    graph = _request(demo)
    Job.objects.filter(id=graph.job_id).update(cancel_requested=True)
    assert not graph_tasks.run_graph_job(graph.job_id, worker=worker)
    assert Job.objects.get(id=graph.job_id).status == JobStatus.CANCELLED
    graph.refresh_from_db()
    assert graph.status == "FAILED"
    assert graph.metadata["error"] == "the generation was cancelled"


def test_a_running_job_is_not_claimed_twice(demo: Any, no_send: Any, worker_factory: Any) -> None:
    worker = worker_factory()
    graph = _request(demo)
    Job.objects.filter(id=graph.job_id).update(status=JobStatus.RUNNING)
    assert not graph_tasks.run_graph_job(graph.job_id, worker=worker)
    assert Graph.objects.get(id=graph.id).status == "PENDING"


def test_graph_intervene_operation(demo: Any, no_send: Any, worker_factory: Any,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The payload graphs.services builds is what the worker operation takes; a big value on a feature
    node changes the top next token; bad input answers 400, untrained transcoders 409."""
    from inference.tasks import operations as tasks

    worker = worker_factory()
    monkeypatch.setitem(tasks._STATE, "worker", worker)
    graph = _request(demo)
    graph_tasks.run_graph_job(graph.job_id, worker=worker)
    graph.refresh_from_db()
    features = [n for n in graph.nodes if n["feature_type"] == "cross layer transcoder"]
    last = max(n["ctx_idx"] for n in features)
    node = max((n for n in features if n["ctx_idx"] == last), key=lambda n: n["influence"] or 0)
    payload = services.intervention_payload(
        graph=graph, interventions=[{"node_id": node["node_id"], "mode": "value", "amount": 5000}],
        top_k=5, max_new_tokens=3)
    reply = tasks._reply(tasks.OPERATIONS["graph_intervene"], payload)
    assert reply["ok"], reply
    result = reply["result"]
    assert len(result["before"]) == len(result["after"]) == 5
    assert result["before"][0]["token"] != result["after"][0]["token"]
    assert abs(sum(t["prob"] for t in result["before"]) - 1) < 1  # probabilities
    assert isinstance(result["steered_text"], str)
    assert result["default_text"] != result["steered_text"]
    # ablating (value 0) leaves the prediction where it was, roughly
    same = tasks._reply(tasks.OPERATIONS["graph_intervene"], {**payload, "interventions": [
        {**payload["interventions"][0], "value": 0.0}]})
    assert same["ok"]
    for bad, status, message in [
        ({**payload, "interventions": []}, 400, "non-empty"),
        ({**payload, "interventions": [{**payload["interventions"][0], "layer": 7}]}, 400, "layer 7"),
        ({**payload, "interventions": [{**payload["interventions"][0], "feature": 64}]}, 400, "feature 64"),
        ({**payload, "interventions": [{**payload["interventions"][0], "position": 99}]}, 400, "position 99"),
        ({**payload, "top_k": 0}, 400, "top_k"),
        ({**payload, "source_set": "nope"}, 404, "no transcoder set 'nope'"),
        ({k: v for k, v in payload.items() if k != "prompt"}, 400, "missing field"),
    ]:
        reply = tasks._reply(tasks.OPERATIONS["graph_intervene"], bad)
        assert (reply["ok"], reply["status"]) == (False, status), (bad, reply)
        assert message in reply["error"]
    untrained = worker_factory(trained=False)
    monkeypatch.setitem(tasks._STATE, "worker", untrained)
    reply = tasks._reply(tasks.OPERATIONS["graph_intervene"], payload)
    assert (reply["ok"], reply["status"]) == (False, 409)
    assert "not trained yet" in reply["error"]
