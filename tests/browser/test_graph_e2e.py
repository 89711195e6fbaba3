"""Attribution graphs end to end through a REAL inference worker process (SmolLM2-135M-Instruct with a
`plt-demo` transcoder set; tests/graphs/smollm2_worker.py), nothing faked:

- the API: POST /api/graph/generate -> the GENERATE_GRAPH job runs on the worker (Celery, model queue)
  -> the graph is READY in PostgreSQL, its page and data render; the `{L}-plt-demo` transcoder sources
  answer activation requests; POST /api/graph/intervene on a feature node changes the top next token;
- the newcomer flow in headless Chromium: type "The capital of France is" on /{model}/graph, wait for the
  graph, click a feature node -> its dashboard panel, pin it, reload the shared URL (pinnedIds kept), run
  an intervention that changes the predicted token. Screenshot: graph_e2e.png.

One worker serves both tests (module scope): ~35 s to load SmolLM2, then about a minute per graph."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser.conftest import screenshot
from tests.graphs.smollm2_worker import MODEL_ID, SET, smollm2_worker, wait_job, wait_registered

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

__all__ = ["smollm2_worker"]  # the module-scoped worker fixture


@pytest.fixture
def live(smollm2_worker: Any, transactional_db: None, settings: Any) -> None:
    settings.INFERENCE_HEARTBEAT_SECONDS = 1
    wait_registered(smollm2_worker)


def _top_feature(graph: Any) -> dict[str, Any]:
    """The most influential transcoder-feature node at the last prompt position."""
    features = [n for n in graph.nodes if n["feature_type"] == "cross layer transcoder"]
    assert features, "the graph has no feature nodes"
    last = max(n["ctx_idx"] for n in features)
    return max((n for n in features if n["ctx_idx"] == last), key=lambda n: n["influence"] or 0)


def test_api_generate_on_the_worker_then_page_and_intervention(live: None, client: Any) -> None:
    from graphs.models import Graph
    from inference import client as inference

    resp = client.post("/api/graph/generate", {"prompt": "Paris is the capital of", "modelId": MODEL_ID,
                                               "maxNLogits": 5}, content_type="application/json")
    assert resp.status_code == 202, resp.content
    body = resp.json()
    graph = wait_job(Graph.objects.get(model_id=MODEL_ID, slug=body["slug"]).id)
    job = graph.job
    assert graph.status == "READY", (job.status, job.error)
    assert job.status == "DONE"
    assert job.result["nodes"] == graph.n_nodes
    assert job.result["links"] == graph.n_links > 0
    print(f"\ngraph on the worker: {job.result}")  # timings for the record
    meta = client.get(f"/api/graph/{MODEL_ID}/{graph.slug}").json()
    assert meta["status"] == "READY"
    data = client.get(f"/api/graph/{MODEL_ID}/{graph.slug}/data")
    assert data.status_code == 200
    assert data.json()["metadata"]["prompt"] == "Paris is the capital of"
    page = client.get(f"/{MODEL_ID}/graph?slug={graph.slug}")
    assert page.status_code == 200
    assert graph.slug in page.content.decode()
    # the same request again: the cache
    again = client.post("/api/graph/generate", {"prompt": "Paris is the capital of", "modelId": MODEL_ID,
                                                "maxNLogits": 5}, content_type="application/json")
    assert again.status_code == 200
    assert again.json()["slug"] == graph.slug

    node = _top_feature(graph)
    layer, index, pos = (int(x) for x in node["node_id"].split("_"))
    # the per-layer transcoder source is served by the worker: its encoder on its input hook
    acts = inference.run_inference(MODEL_ID, "activation_single", {
        "prompt": "Paris is the capital of", "source": f"{layer}-{SET}", "index": index}, timeout=120)
    assert max(acts["activation"]["values"]) > 0

    resp = client.post("/api/graph/intervene", {
        "modelId": MODEL_ID, "slug": graph.slug, "topK": 5, "maxNewTokens": 1,
        "interventions": [{"node_id": node["node_id"], "mode": "value", "amount": 1000}]},
        content_type="application/json")
    assert resp.status_code == 200, resp.content
    out = resp.json()
    assert out["payload"]["interventions"] == [{"layer": layer, "position": pos, "feature": index,
                                                "value": 1000.0}]
    assert out["before"][0]["token"] != out["after"][0]["token"], out
    assert out["default_text"] != out["steered_text"]
    # a node that is not a feature is refused with a message, not a 5xx
    err = next(n for n in graph.nodes if n["feature_type"] == "embedding")
    bad = client.post("/api/graph/intervene", {"modelId": MODEL_ID, "slug": graph.slug, "interventions": [
        {"node_id": err["node_id"], "mode": "value", "amount": 1}]}, content_type="application/json")
    assert bad.status_code == 400
    assert "not a transcoder feature node" in bad.json()["message"]


def _dashboard_from_the_worker(layer: int, index: int) -> None:
    """A small dashboard for the feature (its Feature row and two activation records), with values the
    worker computes on its `{layer}-plt-demo` source (the full dashboard job is tested elsewhere)."""
    from features.models import Source
    from inference import client as inference
    from tests import factories

    source = Source.objects.get(model_id=MODEL_ID, name=f"{layer}-{SET}")
    feature = factories.make_feature(source, index, max_act_approx=1.0)
    for text in ("The capital of France is", "Berlin is the capital of Germany"):
        acts = inference.run_inference(MODEL_ID, "activation_single", {
            "prompt": text, "source": source.name, "index": index}, timeout=120)
        values = [max(0.0, v) for v in acts["activation"]["values"]]
        if max(values) == 0:
            values[-1] = 1e-6  # the record needs a maximum; the feature may not fire on this text
        factories.make_activation(feature, acts["tokens"], values)


@pytest.mark.browser
def test_newcomer_flow_in_the_browser(live: None, live_server: Any, page: Any) -> None:
    from graphs.models import Graph

    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/{MODEL_ID}/graph")
    page.locator("#generate-form textarea[name=prompt]").fill("The capital of France is")
    page.locator("#generate-btn").click()
    page.wait_for_url(re.compile(r".*/graph\?slug=the-capital-of-france-is-"))
    slug = parse_qs(urlparse(page.url).query)["slug"][0]
    graph = Graph.objects.get(model_id=MODEL_ID, slug=slug)
    assert page.locator("#no-worker").count() == 0  # the worker is live
    graph = wait_job(graph.id)
    assert graph.status == "READY", graph.job.error
    # the status poll reloads the page once the graph is ready
    page.locator("#graph-stage[data-ready='1']").wait_for(timeout=60_000)

    node = _top_feature(graph)
    node_id = node["node_id"]
    layer, index, _ = node_id.split("_")
    _dashboard_from_the_worker(int(layer), int(index))
    pos = page.evaluate("(id) => window.npGraph.nodePos(id)", node_id)
    assert pos is not None, f"{node_id} is not drawn"
    box = page.locator("#graph-overlay").bounding_box()
    page.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])
    panel = page.locator("#node-panel")
    panel.locator(f"[data-node-id='{node_id}']").wait_for()
    dashboard = page.locator("#dashboard")
    dashboard.locator("#dashboard-link", has_text=f"{layer}-{SET} #{index}").wait_for()  # its dashboard
    assert dashboard.locator(".acts .act").count() == 2
    page.locator("#pin-btn").click()
    page.wait_for_function("(id) => window.npGraph.state.pinned.includes(id)", arg=node_id)
    shared = page.url
    assert node_id in parse_qs(urlparse(shared).query)["pinnedIds"][0].split(",")

    page.goto("about:blank")
    page.goto(shared)  # the shared URL restores the subgraph
    page.locator("#graph-stage[data-ready='1']").wait_for()
    assert page.locator(f"#pinned-list li[data-pinned='{node_id}']").count() == 1

    row = page.locator(f"[data-intervene='{node_id}']")
    row.locator("select").select_option("value")
    row.locator("input").fill("1000")
    page.locator("#intervene-tokens").fill("1")
    page.locator("#intervene-btn").click()
    verdict = page.locator("#intervene-verdict")
    verdict.wait_for(timeout=180_000)
    assert verdict.get_attribute("data-changed") == "true", verdict.inner_text()
    assert "Top prediction changed" in verdict.inner_text()
    assert page.locator("#steered-text").inner_text() != page.locator("#default-text").inner_text()
    verdict.scroll_into_view_if_needed()
    screenshot(page, "graph_e2e")
