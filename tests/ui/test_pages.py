"""Django test-client tests of the catalog and feature pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from inference import client as inference

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker_w1(rich) -> Iterator[None]:
    """A registered worker row whose Redis liveness key is alive (as a running worker keeps it)."""
    inference.register_host(name="w1", model=rich["model"], device="cpu", dtype="float32",
                            source_names=[rich["source"].name])
    yield
    inference.mark_dead("w1", rich["model"].id)


def test_home_lists_models_sets_releases_and_jump_box(client, rich) -> None:
    rich["release"].featured = True
    rich["release"].save()
    body = client.get("/").content.decode()
    assert "GPT-2 Small" in body
    assert "6-res-jb" in body
    assert 'id="featured"' in body
    assert "res-jb-release" in body
    assert 'id="jump-form"' in body
    assert 'href="/random"' in body


def test_home_without_models_explains_how_to_start(client, db) -> None:
    assert "No models yet" in client.get("/").content.decode()


def test_jump_redirects_to_feature_source_or_model(client, rich) -> None:
    assert client.get("/jump?model=gpt2-small&source=6-res-jb&index=200").url == "/gpt2-small/6-res-jb/200"
    assert client.get("/jump?model=gpt2-small&source=6-res-jb").url == "/gpt2-small/6-res-jb/"
    assert client.get("/jump?model=gpt2-small").url == "/gpt2-small/"


def test_random_feature_redirects_to_a_live_feature(client, rich) -> None:
    for _ in range(5):
        url = client.get("/random").url
        assert url in ("/gpt2-small/6-res-jb/200", "/gpt2-small/6-res-jb/201")
    assert client.get("/gpt2-small/6-res-jb/random").status_code == 302


def test_random_without_features_is_404(client, db) -> None:
    assert client.get("/random").status_code == 404


def test_prev_next_skip_gaps_and_stop_at_the_ends(client, rich) -> None:
    assert client.get("/gpt2-small/6-res-jb/200/next").url == "/gpt2-small/6-res-jb/201"
    assert client.get("/gpt2-small/6-res-jb/202/prev").url == "/gpt2-small/6-res-jb/201"
    end = client.get("/gpt2-small/6-res-jb/200/prev", follow=True)
    assert "no earlier feature" in end.content.decode()


def test_model_page_says_when_no_worker_serves_it(client, rich, request) -> None:
    body = client.get("/gpt2-small/").content.decode()
    assert "no inference worker serves this model" in body
    request.getfixturevalue("worker_w1")
    body = client.get("/gpt2-small/").content.decode()
    assert "inference worker live" in body
    assert ">live<" in body


def test_source_page_metadata_evals_and_browser(client, rich) -> None:
    body = client.get("/gpt2-small/6-res-jb/").content.decode()
    assert "Skylion007/openwebtext" in body
    assert "architecture" in body
    assert "eval-core" in body
    assert "eval-training" in body
    assert "explained_variance" in body
    assert "mentions of France and Paris" in body  # best explanation in the browser
    assert "/gpt2-small/6-res-jb/202" in body
    assert "dead" in body


def test_source_browser_pages_with_keyset_cursors(client, rich) -> None:
    from features.models import Feature

    Feature.objects.bulk_create([Feature(source=rich["source"], index=i, max_act_approx=float(i))
                                 for i in range(300, 360)])
    first = client.get("/gpt2-small/6-res-jb/", {"panel": "browser"}, HTTP_HX_REQUEST="true")
    body = first.content.decode()
    assert 'id="browser"' in body
    assert "<html" not in body
    assert "?after=" in body
    second = client.get("/gpt2-small/6-res-jb/?after=347").content.decode()
    assert "/gpt2-small/6-res-jb/348" in second
    assert "/gpt2-small/6-res-jb/347\"" not in second
    assert "?before=348" in second
    by_max = client.get("/gpt2-small/6-res-jb/?sort=max").content.decode()
    assert by_max.index("/gpt2-small/6-res-jb/359") < by_max.index("/gpt2-small/6-res-jb/358")


def test_empty_source_explains_import_or_generation(client, rich) -> None:
    from tests import factories

    factories.make_source(rich["model"], layer=7)
    body = client.get("/gpt2-small/7-res-jb/").content.decode()
    assert "No features in this source yet" in body
    assert "generate_dashboards" in body


def test_umap_fragment_has_points_with_explanations_and_links(client, rich) -> None:
    body = client.get("/gpt2-small/6-res-jb/", {"panel": "umap"}, HTTP_HX_REQUEST="true").content.decode()
    assert body.count("<circle") == 3
    assert 'data-e="mentions of France and Paris"' in body
    assert 'href="/gpt2-small/6-res-jb/201"' in body


@pytest.mark.parametrize("url", ["/gpt2-small/6-res-jb/999", "/gpt2-small/9-nope/", "/nope/",
                                 "/gpt2-small/6-res-jb/999/panel/lists", "/embed/gpt2-small/6-res-jb/999",
                                 "/lists/999/", "/steer/nope", "/embed/steer/nope"])
def test_unknown_ids_are_a_real_404_page(client, rich, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert b"Not found" in response.content
    assert b"random feature" in response.content


def _feature_body(client: Any) -> str:
    response = client.get("/gpt2-small/6-res-jb/200")
    assert response.status_code == 200
    return response.content.decode()


def test_feature_page_groups_activations_top_then_bins_with_share(client, rich) -> None:
    body = _feature_body(client)
    top, upper, lower = (body.index('data-bin="top"'), body.index('data-bin="bin-0"'),
                         body.index('data-bin="bin-1"'))
    assert top < upper < lower
    assert "Interval 1.9 – 3.8" in body
    assert "4.3% of activations" in body
    assert "50% of activations" in body
    assert 'data-max-index="30"' in body  # context presets center on the max token
    assert 'data-preset="stacked"' in body
    assert 'data-preset="snippet"' in body
    assert 'data-preset="full"' in body
    assert '<br class="lb">' in body
    assert "↵" in body


def test_feature_page_tokens_are_coloured_with_hover_values(client, rich) -> None:
    body = _feature_body(client)
    assert ('<span class="tok hot max" tabindex="0" data-v="9.500" title="9.500" style="--a:1.000">'
            " France</span>" in body)
    assert 'title="0.500" style="--a:0.053"> capital' in body


def test_feature_page_explanations_scores_and_details_dialog(client, rich) -> None:
    body = _feature_body(client)
    assert "mentions of France and Paris" in body
    assert "np_max-act-logits" in body
    assert "eleuther_fuzz 0.82" in body
    assert '<dialog id="score-' in body
    assert "I like turtles" in body
    assert "balanced_accuracy" in body


def test_feature_page_histograms_logits_similar_steer_and_embed(client, rich) -> None:
    body = _feature_body(client)
    assert body.count('<figure class="hist') == 2
    assert "0.1%" in body
    assert "<code> Paris</code>" in body
    assert "<code> the</code>" in body
    assert 'href="/gpt2-small/6-res-jb/201"' in body
    assert "Italian cities" in body
    assert "/steer?model=gpt2-small&amp;features=6-res-jb%3A200%3A9.5" in body
    assert "http://testserver/embed/gpt2-small/6-res-jb/200" in body


def test_feature_page_query_count(client, rich, django_assert_max_num_queries) -> None:
    """feature (+source, model, set), activations, explanations, scores, neighbours' explanations."""
    with django_assert_max_num_queries(5):
        client.get("/gpt2-small/6-res-jb/200")


def test_dead_feature_shows_a_notice(client, rich) -> None:
    body = client.get("/gpt2-small/6-res-jb/202").content.decode()
    assert 'id="dead-notice"' in body
    assert "No explanations yet" in body
    assert "No activation examples stored" in body


def test_live_panel_without_worker_says_so(client, rich) -> None:
    body = client.get("/gpt2-small/6-res-jb/200/panel/live").content.decode()
    assert 'id="no-worker"' in body
    assert "Live inference is offline" in body  # issue 18: said to users, not operators
    assert "manage.py" not in body
    assert "disabled" in body


def test_live_panel_with_worker_enables_the_box(client, worker_w1) -> None:
    body = client.get("/gpt2-small/6-res-jb/200/panel/live").content.decode()
    assert 'id="no-worker"' not in body
    assert 'id="test-text-form"' in body


def test_live_similar_without_worker_is_a_message(client, rich) -> None:
    body = client.get("/gpt2-small/6-res-jb/200/panel/similar").content.decode()
    assert "Live lookup is offline" in body


def test_feature_embed_is_frameable_and_chrome_less(client, rich) -> None:
    response = client.get("/embed/gpt2-small/6-res-jb/200")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response.headers
    body = response.content.decode()
    assert 'class="topbar"' not in body
    assert "mentions of France and Paris" in body
    assert client.get("/gpt2-small/6-res-jb/200").headers["X-Frame-Options"] == "DENY"
