from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from graphs import services
from graphs.models import Graph, GraphStatus
from inference import client as inference
from neuronpedia.accounts.services import create_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _isolated_rate_limits(settings: Any) -> None:
    settings.NP_RATE_LIMIT_KEY_PREFIX = f"np:test:{uuid.uuid4().hex}"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The Celery messages sent (recorded instead of reaching a broker)."""
    from neuronpedia.celery import app

    messages: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: messages.append({"name": name, **kw}))
    return messages


def _api(user: Any = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_X_API_KEY=create_api_key(user=user)[1])
    return client


def _ready(demo: dict[str, Any], user: Any = None, slug: str = "paris", **kw: Any) -> Graph:
    return services.import_graph(model=demo["model"], data=demo["graph_json"], user=user, slug=slug, **kw)


def test_generate_queues_then_answers_from_the_cache(demo, sent, alice,  # type: ignore[no-untyped-def]
                                                    django_capture_on_commit_callbacks) -> None:
    body = {"prompt": "The capital of France is", "modelId": demo["model"].id, "maxNLogits": 5,
            "nodeThreshold": 0.7, "batchSize": 16}
    with django_capture_on_commit_callbacks(execute=True):
        first = _api(alice).post("/api/graph/generate", body, format="json")
    assert first.status_code == 202, first.json()
    meta = first.json()
    assert meta["status"] == "PENDING"
    assert meta["jobId"]
    assert meta["url"].endswith(f"/graph?slug={meta['slug']}")
    assert meta["generationSettings"]["max_n_logits"] == 5
    assert meta["generationSettings"]["batch_size"] == 16
    assert len(sent) == 1
    again = _api().post("/api/graph/generate", body, format="json")
    assert again.status_code == 200
    assert again.json()["slug"] == meta["slug"]
    assert again.json()["message"] == "Graph found in the cache"
    assert len(sent) == 1


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"modelId": "smollm2-135m-instruct"}, 400, "prompt"),
    ({"prompt": "x", "modelId": "smollm2-135m-instruct", "maxNLogits": 0}, 400, "maxNLogits"),
    ({"prompt": "x", "modelId": "smollm2-135m-instruct", "nodeThreshold": "high"}, 400, "nodeThreshold"),
    ({"prompt": "x", "modelId": "smollm2-135m-instruct", "slug": "Not OK"}, 400, "slug"),
    ({"prompt": "x", "modelId": "smollm2-135m-instruct", "sourceSetName": "res-jb"}, 400, "sourceSetName"),
    ({"prompt": "x", "modelId": "no-such-model"}, 404, None),
])
def test_generate_refuses_bad_input_with_json(demo, sent, body, status, field) -> None:  # type: ignore[no-untyped-def]
    response = _api().post("/api/graph/generate", body, format="json")
    assert response.status_code == status
    data = response.json()
    assert data["message"]
    if field:
        assert field in data["errors"]
    assert not sent


def test_generate_refuses_non_json(demo) -> None:  # type: ignore[no-untyped-def]
    response = _api().post("/api/graph/generate", "prompt=x",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["message"]


def test_metadata_data_list_and_privacy(demo, alice, bob) -> None:  # type: ignore[no-untyped-def]
    _ready(demo, alice, "public-one")
    _ready(demo, alice, "hidden-one", visibility="PRIVATE")
    model_id = demo["model"].id
    meta = _api().get(f"/api/graph/{model_id}/public-one").json()
    assert meta["status"] == "READY"
    assert meta["numNodes"] == len(demo["graph_json"]["nodes"])
    assert meta["user"]["name"] == "alice"
    data = _api().get(f"/api/graph/{model_id}/public-one/data?download=1")
    assert data.status_code == 200
    assert "attachment" in data["Content-Disposition"]
    exported = json.loads(data.content)
    assert exported["nodes"] == demo["graph_json"]["nodes"]
    assert exported["links"] == demo["graph_json"]["links"]
    # the export imports again unchanged (round trip)
    copy = services.import_graph(model=demo["model"], data=exported, user=bob, slug="copy")
    assert copy.n_links == meta["numLinks"]
    assert _api(bob).get(f"/api/graph/{model_id}/hidden-one").status_code == 404
    assert _api(bob).get(f"/api/graph/{model_id}/hidden-one/data").status_code == 404
    assert _api(alice).get(f"/api/graph/{model_id}/hidden-one").status_code == 200
    listed = [g["slug"] for g in _api(bob).get(f"/api/graph/list?modelId={model_id}").json()]
    assert "public-one" in listed
    assert "hidden-one" not in listed
    owned = [g["slug"] for g in _api(alice).post("/api/graph/list-owned").json()]
    assert sorted(owned) == ["hidden-one", "public-one"]
    assert _api().post("/api/graph/list-owned").status_code == 401
    assert _api().get("/api/graph/list?modelId=nope").status_code == 404


def test_pending_graph_data_is_a_409(demo, sent) -> None:  # type: ignore[no-untyped-def]
    graph, _ = services.request_graph(model=demo["model"], prompt="x", slug="wait")
    response = _api().get(f"/api/graph/{demo['model'].id}/wait/data")
    assert response.status_code == 409
    assert "not ready" in response.json()["message"]
    assert graph.status == GraphStatus.PENDING


def test_delete_needs_the_owner(demo, alice, bob) -> None:  # type: ignore[no-untyped-def]
    _ready(demo, alice)
    body = {"modelId": demo["model"].id, "slug": "paris"}
    assert _api().post("/api/graph/delete", body, format="json").status_code == 401
    assert _api(bob).post("/api/graph/delete", body, format="json").status_code == 403
    assert _api(alice).post("/api/graph/delete", body, format="json").json() == {"message": "Graph deleted"}
    assert not Graph.objects.exists()
    assert _api(alice).post("/api/graph/delete", body, format="json").status_code == 404


def test_upload_validates_strictly_and_limits_size(demo, alice, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client = _api(alice)
    good = {"modelId": demo["model"].id, "graph": demo["graph_json"]}
    ok = client.post("/api/graph/upload", good, format="json")
    assert ok.status_code == 201
    assert ok.json()["slug"] == "capital-france"
    dup = client.post("/api/graph/upload", good, format="json")
    assert dup.status_code == 400
    assert "already exists" in dup.json()["message"]
    broken = json.loads(json.dumps(demo["graph_json"]))
    broken["links"][3]["target"] = "ghost"
    bad = client.post("/api/graph/upload", {**good, "graph": broken, "slug": "b"}, format="json")
    assert bad.status_code == 400
    assert "/links/3/target" in bad.json()["message"]
    assert _api().post("/api/graph/upload", {**good, "graph": {}}, format="json").status_code == 401
    monkeypatch.setattr("graphs.api.MAX_UPLOAD_BYTES", 1000)
    big = client.post("/api/graph/upload", {**good, "slug": "c"}, format="json")
    assert big.status_code == 413
    assert "larger than" in big.json()["message"]


def test_intervene_validates_and_reports_missing_worker(demo) -> None:  # type: ignore[no-untyped-def]
    _ready(demo)
    node = demo["dash_node"]
    body = {"modelId": demo["model"].id, "slug": "paris",
            "interventions": [{"node_id": node["node_id"], "mode": "scale", "amount": 0}]}
    no_worker = _api().post("/api/graph/intervene", body, format="json")
    assert no_worker.status_code == 503
    assert "no inference worker" in no_worker.json()["message"]
    emb = next(n for n in demo["graph_json"]["nodes"] if n["feature_type"] == "embedding")
    bad = _api().post("/api/graph/intervene",
                      {**body, "interventions": [{"node_id": emb["node_id"], "amount": 1}]}, format="json")
    assert bad.status_code == 400
    assert "not a transcoder feature" in bad.json()["message"]
    empty = _api().post("/api/graph/intervene", {**body, "interventions": []}, format="json")
    assert empty.status_code == 400


def test_intervene_sends_the_contract_payload(demo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The worker call itself is recorded (the real op is exercised by the end-to-end test)."""
    _ready(demo)
    calls = []

    def fake_run(model_id, operation, payload, **kw):  # type: ignore[no-untyped-def]
        calls.append((model_id, operation, payload))
        return {"before": [{"token": " Paris", "token_id": 7042, "prob": 0.6, "logit": 20.0}],
                "after": [{"token": " the", "token_id": 260, "prob": 0.3, "logit": 15.0}],
                "default_text": " Paris.", "steered_text": " the city"}

    monkeypatch.setattr(inference, "run_inference", fake_run)
    node = demo["dash_node"]
    response = _api().post("/api/graph/intervene", {
        "modelId": demo["model"].id, "slug": "paris", "topK": 5, "maxNewTokens": 4,
        "interventions": [{"node_id": node["node_id"], "mode": "scale", "amount": -1.5}]}, format="json")
    assert response.status_code == 200, response.json()
    (model_id, operation, payload), = calls
    layer, feat, pos = (int(x) for x in node["node_id"].split("_"))
    assert (model_id, operation) == (demo["model"].id, "graph_intervene")
    assert payload["interventions"] == [{"layer": layer, "position": pos, "feature": feat,
                                         "value": -1.5 * node["activation"]}]
    assert payload["top_k"] == 5
    assert payload["max_new_tokens"] == 4
    assert payload["source_set"] == "plt-demo"


def test_openapi_documents_the_graph_routes(client) -> None:  # type: ignore[no-untyped-def]
    schema = client.get("/api/schema/?format=json").json()
    for path in ("/api/graph/generate", "/api/graph/{model_id}/{slug}", "/api/graph/{model_id}/{slug}/data",
                 "/api/graph/list", "/api/graph/list-owned", "/api/graph/delete", "/api/graph/upload",
                 "/api/graph/intervene"):
        assert any(p.rstrip("/").replace("{modelId}", "{model_id}") == path for p in schema["paths"]), path
    generate = next(v for p, v in schema["paths"].items() if p.startswith("/api/graph/generate"))
    assert {"200", "202", "400"} <= set(generate["post"]["responses"])


def test_feature_labels_are_the_dashboards_explanations(demo) -> None:  # type: ignore[no-untyped-def]
    _ready(demo)
    labels = _api().get(f"/api/graph/{demo['model'].id}/paris/labels").json()
    assert labels == {demo["dash_node"]["node_id"]: "capital cities and countries"}


def test_upload_of_a_graph_larger_than_djangos_body_cap(demo, alice, settings) -> None:  # type: ignore[no-untyped-def]
    """60,000 links (~4.6 MB of JSON) is over DATA_UPLOAD_MAX_MEMORY_SIZE but within the graph limit."""
    from tests.graphs.fixtures import make_graph

    data = make_graph(n_features=2000, n_links=60_000, tokens=[f" t{i}" for i in range(20)], slug="big")
    body = json.dumps({"modelId": demo["model"].id, "graph": data})
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = _api(alice).post("/api/graph/upload", body, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["numLinks"] == len(data["links"])
    bad = _api(alice).post("/api/graph/upload", "[" * 100_000, content_type="application/json")
    assert bad.status_code == 400
    assert _api(alice).post("/api/graph/upload", "x=1", content_type="text/plain").status_code == 415
