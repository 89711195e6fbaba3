from __future__ import annotations

from typing import Any

import pytest

from graphs import services
from graphs.models import Graph
from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import JobKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The Celery messages sent (recorded instead of reaching a broker)."""
    from neuronpedia.celery import app

    messages: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: messages.append({"name": name, **kw}))
    return messages


def test_graph_page_shell_list_and_form(client, demo, alice) -> None:  # type: ignore[no-untyped-def]
    services.import_graph(model=demo["model"], data=demo["graph_json"], user=alice, slug="paris")
    page = client.get(f"/{demo['model'].id}/graph")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="graph-list"' in html
    assert "graph?slug=paris" in html
    assert 'id="generate-form"' in html
    shell = client.get(f"/{demo['model'].id}/graph?slug=paris").content.decode()
    assert 'id="graph-app"' in shell
    assert "js/graph.js" in shell
    assert "/api/graph/smollm2-135m-instruct/paris/data" in shell
    assert client.get(f"/{demo['model'].id}/graph?slug=nope").status_code == 404
    assert client.get("/graph").url == f"/{demo['model'].id}/graph"


def test_generate_form_redirects_and_bad_input_is_a_400_page(  # type: ignore[no-untyped-def]
        client, demo, sent, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/{demo['model'].id}/graph/generate",
                               {"prompt": "The capital of France is", "node_threshold": "0.7", "chat": "on"})
    graph = Graph.objects.get()
    assert response.status_code == 302
    assert response.url == graph.get_absolute_url()
    assert graph.chat
    assert graph.params["node_threshold"] == 0.7
    assert len(sent) == 1
    bad = client.post(f"/{demo['model'].id}/graph/generate", {"prompt": "x", "max_n_logits": "lots"})
    assert bad.status_code == 400
    assert "max_n_logits must be a number" in bad.content.decode()
    bad = client.post(f"/{demo['model'].id}/graph/generate", {"prompt": "x", "edge_threshold": "7"})
    assert bad.status_code == 400
    assert "edge_threshold must be between" in bad.content.decode()


def test_status_polls_until_ready_then_refreshes(client, demo, sent) -> None:  # type: ignore[no-untyped-def]
    graph, _ = services.request_graph(model=demo["model"], prompt="x", slug="poll")
    url = f"/{demo['model'].id}/graph/status?slug=poll"
    queued = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="no-worker"' in queued  # nobody serves the model in this test: the job waits
    jobs.claim_job(graph.job_id)
    jobs.record_progress(graph.job_id, done=3, total=10)
    pending = client.get(url, HTTP_HX_REQUEST="true")
    assert 'data-status="PENDING"' in pending.content.decode()
    assert "hx-trigger" in pending.content.decode()
    assert "HX-Refresh" not in pending
    page = client.get(f"/{demo['model'].id}/graph?slug=poll").content.decode()
    assert 'id="graph-status"' in page
    assert "3 / 10" in page
    services.store_generated_graph(job=graph.job, graph=demo["graph_json"])
    ready = client.get(url, HTTP_HX_REQUEST="true")
    assert ready["HX-Refresh"] == "true"


def test_failed_generation_shows_the_error(client, demo, sent) -> None:  # type: ignore[no-untyped-def]
    graph, _ = services.request_graph(model=demo["model"], prompt="x", slug="boom")
    jobs.claim_job(graph.job_id)
    jobs.fail_job(graph.job_id, error="transcoders missing")
    html = client.get(f"/{demo['model'].id}/graph?slug=boom").content.decode()
    assert 'data-status="FAILED"' in html
    assert "transcoders missing" in html


def test_upload_form(client, demo, alice) -> None:  # type: ignore[no-untyped-def]
    import io
    import json

    url = f"/{demo['model'].id}/graph/upload"
    anon = client.post(url, {"file": io.BytesIO(json.dumps(demo["graph_json"]).encode())})
    assert anon.status_code == 403
    client.force_login(alice)
    bad = client.post(url, {"file": io.BytesIO(b"{not json")})
    assert bad.status_code == 400
    assert "not JSON" in bad.content.decode()
    ok = client.post(url, {"file": io.BytesIO(json.dumps(demo["graph_json"]).encode())})
    assert ok.status_code == 302
    assert ok.url.endswith("graph?slug=capital-france")


def test_home_banner_training_then_ready(client, demo) -> None:  # type: ignore[no-untyped-def]
    from django.template import Context, Template

    render = lambda: Template("{% load graphs_tags %}{% graphs_banner %}").render(Context({}))  # noqa: E731
    job = jobs.create_job(kind=JobKind.TRAIN_TRANSCODERS, title="train", model_id_ref=demo["model"].id)
    jobs.claim_job(job.id)
    jobs.record_progress(job.id, done=7, total=30)
    html = render()
    assert 'data-state="training"' in html
    assert "graphs are coming" in html.lower()
    assert "7 / 30" in html
    jobs.finish_job(job.id)
    html = render()
    assert 'data-state="ready"' in html
    assert f"/{demo['model'].id}/graph" in html


def test_delete_button_for_the_owner_only(client, demo, alice, bob) -> None:  # type: ignore[no-untyped-def]
    services.import_graph(model=demo["model"], data=demo["graph_json"], user=alice, slug="mine")
    page = f"/{demo['model'].id}/graph?slug=mine"
    assert 'id="delete-graph"' not in client.get(page).content.decode()
    client.force_login(bob)
    assert 'id="delete-graph"' not in client.get(page).content.decode()
    assert client.post(f"/{demo['model'].id}/graph/delete", {"slug": "mine"}).status_code == 403
    client.force_login(alice)
    assert 'id="delete-graph"' in client.get(page).content.decode()
    response = client.post(f"/{demo['model'].id}/graph/delete", {"slug": "mine"})
    assert response.status_code == 302
    assert not Graph.objects.exists()
