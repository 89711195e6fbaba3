"""The attribution-graph page in headless Chromium: the graph renders, hover and click show the node and
its feature dashboard, pins and supernodes go into the URL (Neuronpedia's pinnedIds / supernodes /
clerps) and survive a reload, pruning hides nodes, and the intervention panel shows before/after.

The intervention test here is UI-only: the browser's request to /api/graph/intervene is answered by a
fake reply (page.route) so the panel can be checked without a worker. The real end-to-end run (live
inference worker -> generate -> page -> intervention) is tests/browser/test_graph_e2e.py."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from graphs import services
from tests.browser.conftest import screenshot
from tests.browser.helpers import log_in
from tests.graphs.conftest import make_demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _open(page: Any, live_server: Any, graph: Any, query: str = "") -> None:
    page.goto(f"{live_server.url}{graph.get_absolute_url()}{query}")
    page.locator("#graph-stage[data-ready='1']").wait_for()


def _point(page: Any, node_id: str) -> tuple[float, float]:
    pos = page.evaluate("(id) => window.npGraph.nodePos(id)", node_id)
    assert pos is not None, f"{node_id} is not drawn"
    box = page.locator("#graph-overlay").bounding_box()
    return box["x"] + pos["x"], box["y"] + pos["y"]


def _query(page: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


@pytest.fixture
def demo(transactional_db: Any) -> dict[str, Any]:
    return make_demo()


@pytest.fixture
def graph(demo: dict[str, Any], alice: Any) -> Any:
    return services.import_graph(model=demo["model"], data=demo["graph_json"], user=alice, slug="capital")


def test_graph_renders_hover_and_click_show_the_dashboard(live_server, page, demo, graph) -> None:  # type: ignore[no-untyped-def]
    _open(page, live_server, graph)
    counts = page.locator("#graph-counts").inner_text()
    assert re.match(r"\d+ / \d+ nodes · \d+ / \d+ links", counts)
    drawn = page.evaluate("window.npGraph.state.visibleNodes.length")
    assert drawn > 20
    node_id = demo["dash_node"]["node_id"]
    x, y = _point(page, node_id)
    page.mouse.move(x, y)
    tip = page.locator("#graph-tip")
    tip.wait_for(state="visible")
    assert "feature" in tip.inner_text()
    assert page.evaluate("window.npGraph.state.hoveredId") == node_id
    screenshot(page, "graph-hover")
    page.mouse.click(x, y)
    panel = page.locator("#node-panel")
    panel.locator(f"[data-node-id='{node_id}']").wait_for()
    panel.locator(".explanation-text", has_text="capital cities and countries").wait_for()  # our feature API
    page.locator("#graph-stage[data-labels='1']").wait_for()
    assert panel.locator("#panel-title").inner_text().strip() == "capital cities and countries"  # node label
    assert panel.locator(".acts .act").count() == 1
    assert panel.locator(".tok[title='11.000']").inner_text() == " France"
    layer, index, _ = node_id.split("_")
    href = panel.locator("#dashboard-link").get_attribute("href")
    assert href == f"/{demo['model'].id}/{layer}-plt-demo/{index}"
    assert panel.locator("h3", has_text="Outputs").count() == 1
    assert _query(page)["clickedId"] == node_id
    screenshot(page, "graph-click-panel")
    # following an edge in the panel selects the other node
    panel.locator(".edge-list .node-link").first.click()
    page.wait_for_function("(id) => window.npGraph.state.clickedId !== id", arg=node_id)


def test_pin_subgraph_supernodes_and_clerps_survive_reload(live_server, page, demo, graph) -> None:  # type: ignore[no-untyped-def]
    _open(page, live_server, graph)
    node_id = demo["dash_node"]["node_id"]
    x, y = _point(page, node_id)
    page.mouse.click(x, y)
    page.locator("#pin-btn").click()
    page.locator("#clerp-input").fill("say a capital")
    page.locator("#clerp-input").press("Enter")
    # ctrl+click pins two more feature nodes
    others = page.evaluate("""(skip) => window.npGraph.state.visibleNodes
        .filter(n => n.kind === 'feature' && n.id !== skip).slice(0, 2).map(n => n.id)""", node_id)
    for other in others:
        ox, oy = _point(page, other)
        page.keyboard.down("Control")
        page.mouse.click(ox, oy)
        page.keyboard.up("Control")
    page.wait_for_function("window.npGraph.state.pinned.length === 3")
    q = _query(page)
    assert q["pinnedIds"].split(",") == [node_id, *others]
    dash = demo["dash_node"]
    feature_key = f"{dash['layer']}_{dash['feature']}_{dash['ctx_idx']}"
    assert json.loads(q["clerps"]) == [[feature_key, "say a capital"]]
    # group two of them into a supernode
    for other in others:
        page.locator(f"#pinned-list input.pin-check[value='{other}']").check()
    page.locator("#supernode-name").fill("capital")
    page.locator("#group-btn").click()
    page.locator(".supernode[data-supernode='capital']").wait_for()
    assert json.loads(_query(page)["supernodes"]) == [["capital", *others]]
    screenshot(page, "graph-subgraph")
    # the shared URL restores everything
    shared = page.url
    page.goto("about:blank")
    page.goto(shared)
    page.locator("#graph-stage[data-ready='1']").wait_for()
    assert page.locator("#pinned-list li[data-pinned]").count() == 3
    page.locator(".supernode[data-supernode='capital']").wait_for()
    assert page.locator("#pinned-list").get_by_text("say a capital").count() >= 1
    assert page.evaluate("window.npGraph.state.clickedId") == node_id
    # unknown ids in a hand-edited URL are ignored, not an error
    _open(page, live_server, graph, "&pinnedIds=nope_1_2," + node_id + "&supernodes=[[1,2]]&clerps=oops")
    assert page.evaluate("window.npGraph.state.pinned") == [node_id]


def test_pruning_slider_hides_nodes(live_server, page, graph) -> None:  # type: ignore[no-untyped-def]
    _open(page, live_server, graph)
    before = page.evaluate("window.npGraph.state.visibleNodes.length")
    page.locator("#node-threshold").fill("0.3")
    page.wait_for_function("(n) => window.npGraph.state.visibleNodes.length < n", arg=before)
    assert _query(page)["pruningThreshold"] == "0.3"
    page.locator("#edge-threshold").fill("0.5")
    page.wait_for_function("window.npGraph.state.visibleLinks.length < window.npGraph.state.links.length / 2")
    screenshot(page, "graph-pruned")


def test_intervention_panel_ui_with_a_fake_reply(live_server, page, demo, graph, alice) -> None:  # type: ignore[no-untyped-def]
    """UI only: the reply is faked in the browser. The request the page sends is checked in full."""
    log_in(page, live_server, alice)
    sent: list[dict[str, Any]] = []

    def fake(route: Any) -> None:
        sent.append(json.loads(route.request.post_data))
        route.fulfill(status=200, content_type="application/json", body=json.dumps({
            "before": [{"token": " Paris", "token_id": 7042, "prob": 0.62, "logit": 21.0},
                       {"token": " the", "token_id": 260, "prob": 0.11, "logit": 19.3}],
            "after": [{"token": " the", "token_id": 260, "prob": 0.35, "logit": 18.0},
                      {"token": " Paris", "token_id": 7042, "prob": 0.05, "logit": 15.9}],
            "default_text": " Paris. It is", "steered_text": " the largest city"}))

    page.route("**/api/graph/intervene", fake)
    node_id = demo["dash_node"]["node_id"]
    _open(page, live_server, graph, f"&pinnedIds={node_id}")
    row = page.locator(f"[data-intervene='{node_id}']")
    row.locator("select").select_option("scale")
    row.locator("input").fill("-3")
    page.locator("#intervene-btn").click()
    verdict = page.locator("#intervene-verdict")
    verdict.wait_for()
    assert verdict.get_attribute("data-changed") == "true"
    assert page.locator("#steered-text").inner_text() == " the largest city"
    assert sent == [{"modelId": demo["model"].id, "slug": "capital", "topK": 10, "maxNewTokens": 12,
                     "interventions": [{"node_id": node_id, "mode": "scale", "amount": -3}]}]
    screenshot(page, "graph-intervention-ui")


def test_intervention_without_a_worker_shows_the_servers_message(live_server, page, demo, graph, bob) -> None:  # type: ignore[no-untyped-def]
    log_in(page, live_server, bob)  # signed in: the page's POST passes the session's CSRF check
    node_id = demo["dash_node"]["node_id"]
    _open(page, live_server, graph, f"&pinnedIds={node_id}")
    page.locator("#intervene-btn").click()
    page.locator("#intervene-error").wait_for()
    assert "no inference worker" in page.locator("#intervene-error").inner_text()


def test_generation_form_progress_and_list(live_server, page, demo, graph, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from neuronpedia.celery import app
    from neuronpedia.jobs import services as jobs

    sent: list[Any] = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: sent.append((name, kw)))
    page.goto(f"{live_server.url}/{demo['model'].id}/graph")
    assert page.locator("#graph-list tr").count() == 2
    page.locator("#generate-form textarea[name=prompt]").fill("Paris is the capital of")
    page.locator("#generate-btn").click()
    page.wait_for_url(re.compile(r".*/graph\?slug=paris-is-the-capital-of-"))
    status = page.locator("#graph-status")
    assert status.get_attribute("data-status") == "PENDING"
    assert len(sent) == 1
    job_id = sent[0][1]["kwargs"]["job_id"]
    jobs.claim_job(job_id)
    jobs.record_progress(job_id, done=2, total=5)
    page.wait_for_function("document.querySelector('#graph-status progress')?.value == 40")
    screenshot(page, "graph-generating")
    from neuronpedia.jobs.models import Job

    services.store_generated_graph(job=Job.objects.get(id=job_id), graph=demo["graph_json"])
    page.locator("#graph-stage[data-ready='1']").wait_for()  # htmx HX-Refresh reloaded the page
    screenshot(page, "graph-page")


def test_home_page_says_graphs_are_coming_then_links_to_them(live_server, page, demo) -> None:  # type: ignore[no-untyped-def]
    from neuronpedia.jobs import services as jobs
    from neuronpedia.jobs.models import JobKind

    job = jobs.create_job(kind=JobKind.TRAIN_TRANSCODERS, title="Train plt-demo",
                          model_id_ref=demo["model"].id)
    jobs.claim_job(job.id)
    jobs.record_progress(job.id, done=12, total=30)
    page.goto(live_server.url + "/")
    banner = page.locator("#graphs-banner[data-state='training']")
    assert "coming" in banner.inner_text()
    assert banner.locator("progress").get_attribute("value") == "40.0"
    jobs.record_progress(job.id, done=15, total=30)
    page.wait_for_function("document.querySelector('#graphs-banner progress').value == 50")  # live (htmx)
    screenshot(page, "home-graphs-coming")
    jobs.finish_job(job.id)
    page.reload()
    page.locator("#graphs-banner[data-state='ready'] #graphs-link").click()
    page.wait_for_url(f"**/{demo['model'].id}/graph")
