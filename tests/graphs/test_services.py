from __future__ import annotations

import json
import zlib
from typing import Any

import pytest

from features.models import Visibility
from graphs import services
from graphs.models import Graph, GraphStatus
from graphs.services import GenerationParams, GraphError
from neuronpedia.jobs.models import Job, JobKind
from tests.graphs.fixtures import make_graph

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The Celery messages sent (recorded instead of reaching a broker nobody consumes in this test)."""
    from neuronpedia.celery import app

    messages: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: messages.append({"name": name, **kw}))
    return messages


def test_request_graph_creates_pending_graph_and_job_and_sends_task_on_commit(
        demo, sent, alice, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    params = GenerationParams(max_n_logits=5, node_threshold=0.7, max_feature_nodes=500, batch_size=32)
    with django_capture_on_commit_callbacks(execute=True):
        graph, created = services.request_graph(model=demo["model"], prompt="The capital of France is",
                                                params=params, chat=True, user=alice)
    assert created
    assert graph.status == GraphStatus.PENDING
    assert graph.creator == alice
    assert graph.slug.startswith("the-capital-of-france-is-")
    job = Job.objects.get(id=graph.job_id)
    assert job.kind == JobKind.GENERATE_GRAPH
    assert job.params == {"model_id": demo["model"].id, "source_set": "plt-demo",
                          "prompt": "The capital of France is", "chat": True, "max_n_logits": 5,
                          "desired_logit_prob": 0.95, "node_threshold": 0.7, "edge_threshold": 0.98,
                          "max_feature_nodes": 500, "batch_size": 32, "slug": graph.slug,
                          "graph_id": graph.id}
    assert sent == [{"name": "inference_worker.tasks.generate_graph", "kwargs": {"job_id": job.id},
                     "queue": f"inference.{demo['model'].id}"}]


def test_same_prompt_and_parameters_return_the_cached_graph(demo, sent, alice, bob) -> None:  # type: ignore[no-untyped-def]
    first, created = services.request_graph(model=demo["model"], prompt="Hello", user=alice)
    again, created_again = services.request_graph(model=demo["model"], prompt="Hello", user=bob)
    assert created
    assert not created_again
    assert again.pk == first.pk
    other, created_other = services.request_graph(model=demo["model"], prompt="Hello", user=bob,
                                                  params=GenerationParams(node_threshold=0.6))
    assert created_other
    assert other.pk != first.pk
    chat, created_chat = services.request_graph(model=demo["model"], prompt="Hello", chat=True)
    assert created_chat
    assert chat.pk != first.pk
    # a private graph is not served to someone else from the cache
    private, _ = services.request_graph(model=demo["model"], prompt="Secret", user=alice,
                                        visibility=Visibility.PRIVATE)
    mine, created_mine = services.request_graph(model=demo["model"], prompt="Secret", user=bob)
    assert created_mine
    assert mine.pk != private.pk
    # a failed generation is not a cache hit
    Job.objects.filter(id=first.job_id).update(status="FAILED")
    retry, created_retry = services.request_graph(model=demo["model"], prompt="Hello", user=alice)
    assert created_retry
    assert retry.pk != first.pk


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"prompt": "   "}, "prompt"),
    ({"prompt": "x", "source_set": "nope"}, "sourceSetName"),
    ({"prompt": "x", "slug": "Bad Slug"}, "slug"),
    ({"prompt": "x", "visibility": "SECRET"}, "visibility"),
    ({"prompt": "x", "visibility": "PRIVATE"}, "visibility"),  # anonymous
])
def test_bad_requests_are_refused(demo, sent, kwargs, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(GraphError) as info:
        services.request_graph(model=demo["model"], **kwargs)
    assert info.value.status == 400
    assert info.value.field == field
    assert not Graph.objects.exists()


@pytest.mark.parametrize(("name", "value"), [("max_n_logits", 0), ("desired_logit_prob", 1.5),
                                             ("node_threshold", float("nan")), ("batch_size", 2.5),
                                             ("max_feature_nodes", True)])
def test_generation_parameters_are_bounded(name, value) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(GraphError) as info:
        GenerationParams(**{name: value})
    assert info.value.field == name


def test_duplicate_slug_is_refused(demo, sent) -> None:  # type: ignore[no-untyped-def]
    services.request_graph(model=demo["model"], prompt="one", slug="mine")
    with pytest.raises(GraphError, match="already exists"):
        services.request_graph(model=demo["model"], prompt="two", slug="mine")


def test_store_generated_graph_is_idempotent_and_round_trips(demo, sent) -> None:  # type: ignore[no-untyped-def]
    graph, _ = services.request_graph(model=demo["model"], prompt="The capital of France is", slug="paris")
    data = demo["graph_json"]
    job = Job.objects.get(id=graph.job_id)
    stored = services.store_generated_graph(job=job, graph=data)
    stored = services.store_generated_graph(job=job, graph=data)
    stored.refresh_from_db()
    assert stored.status == GraphStatus.READY
    assert stored.n_nodes == len(data["nodes"])
    assert stored.n_links == len(data["links"])
    out = stored.to_graph_json()
    assert out["nodes"] == data["nodes"]
    assert out["links"] == data["links"]
    assert out["metadata"]["prompt_tokens"] == data["metadata"]["prompt_tokens"]
    assert out["metadata"]["slug"] == "paris"
    assert out["metadata"]["scan"] == "plt-demo"
    assert out["metadata"]["generation_settings"] == data["metadata"]["generation_settings"]
    assert Graph.objects.count() == 1


def test_store_generated_graph_refuses_malformed_output(demo, sent) -> None:  # type: ignore[no-untyped-def]
    graph, _ = services.request_graph(model=demo["model"], prompt="x")
    bad = make_graph()
    bad["links"].append({"source": "nope", "target": bad["nodes"][0]["node_id"], "weight": 1.0})
    with pytest.raises(ValueError, match="invalid graph"):
        services.store_generated_graph(job=graph.job, graph=bad)
    graph.refresh_from_db()
    assert graph.status == GraphStatus.PENDING


def test_colliding_error_and_feature_ids_from_circuit_tracer_are_deduplicated(demo, sent) -> None:  # type: ignore[no-untyped-def]
    from tests.graphs.fixtures import error_node, feature_node

    graph, _ = services.request_graph(model=demo["model"], prompt="x")
    data = make_graph()
    # circuit-tracer: error node of layer 7 at pos 4 is "0_7_4", so is feature #7 of layer 0 at pos 4
    data["nodes"].insert(0, feature_node(0, 4, 7, influence=0.1, activation=1.0))
    data["nodes"].insert(1, error_node(7, 4, influence=0.2))
    stored = services.store_generated_graph(job=graph.job, graph=data)
    assert stored.n_nodes == len(data["nodes"]) - 1
    assert stored.metadata["info"]["dropped_duplicate_node_ids"] == 1
    assert [n["feature_type"] for n in stored.nodes if n["node_id"] == "0_7_4"] == ["cross layer transcoder"]


def test_links_storage_zlib_vs_json(demo, capsys) -> None:  # type: ignore[no-untyped-def]
    """The measurement behind storing links as zlib'd JSON in bytea rather than jsonb."""
    from django.db import connection

    data = make_graph(n_features=900, n_links=20_000, tokens=[f" t{i}" for i in range(12)])
    raw = json.dumps(data["links"], separators=(",", ":")).encode()
    packed = zlib.compress(raw, 6)
    with connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE links_probe (j jsonb, b bytea)")
        cur.execute("INSERT INTO links_probe VALUES (%s::jsonb, %s)", [raw.decode(), packed])
        cur.execute("SELECT pg_column_size(j), pg_column_size(b) FROM links_probe")  # as stored (TOAST)
        jsonb_size, bytea_size = cur.fetchone()
    with capsys.disabled():
        print(f"\n20,000 links: JSON {len(raw) / 1e6:.2f} MB, jsonb column {jsonb_size / 1e6:.2f} MB "
              f"stored (TOAST pglz), zlib bytea {bytea_size / 1e6:.2f} MB")
    assert bytea_size < jsonb_size


def test_import_graph_and_interventions_payload(demo, alice) -> None:  # type: ignore[no-untyped-def]
    data = demo["graph_json"]
    graph = services.import_graph(model=demo["model"], data=data, user=alice)
    assert graph.scan == "plt-demo"
    assert graph.origin == "uploaded"
    assert graph.status == GraphStatus.READY
    with pytest.raises(GraphError, match="already exists"):
        services.import_graph(model=demo["model"], data=data, user=alice)
    node = demo["dash_node"]
    layer, feat, pos = (int(x) for x in node["node_id"].split("_"))
    payload = services.intervention_payload(graph=graph, interventions=[
        {"node_id": node["node_id"], "mode": "scale", "amount": -2},
        {"node_id": node["node_id"], "mode": "value", "amount": 3.5}])
    assert payload == {"source_set": "plt-demo", "prompt": data["metadata"]["prompt"], "chat": False,
                       "top_k": 10, "max_new_tokens": 12, "interventions": [
                           {"layer": layer, "position": pos, "feature": feat,
                            "value": -2 * node["activation"]},
                           {"layer": layer, "position": pos, "feature": feat, "value": 3.5}]}
    emb = next(n for n in data["nodes"] if n["feature_type"] == "embedding")
    for bad in ([{"node_id": emb["node_id"], "amount": 0}], [{"node_id": "x_1_2", "amount": 0}],
                [{"node_id": node["node_id"], "amount": float("inf")}], []):
        with pytest.raises(GraphError):
            services.intervention_payload(graph=graph, interventions=bad)
