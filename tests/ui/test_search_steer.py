"""Search and steering pages through the Django test client."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from features.models import Explanation
from steering.models import SteerOutput, SteerOutputFeature

pytestmark = pytest.mark.django_db


class FakeEmbedder:
    name = "all-MiniLM-L6-v2"
    dimensions = 384

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([_vec("france" in t.lower()) for t in texts])


def _vec(french: bool) -> np.ndarray:
    v = np.zeros(384, dtype=np.float32)
    v[0 if french else 1] = 1.0
    return v


@pytest.fixture
def embedded(rich: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    Explanation.objects.filter(pk=rich["explanation"].pk).update(embedding=_vec(True).tolist(),
                                                                  embedder="all-MiniLM-L6-v2")
    Explanation.objects.filter(feature=rich["neighbour"]).update(embedding=_vec(False).tolist(),
                                                                 embedder="all-MiniLM-L6-v2")
    monkeypatch.setattr("autointerp.embedders.get_embedder", lambda name, user=None: FakeEmbedder())
    return rich


def test_explanation_search_ranks_and_names_the_embedder(client, embedded) -> None:
    body = client.get("/search-explanations", {"q": "about France"}).content.decode()
    assert "Embedded with <strong>all-MiniLM-L6-v2</strong>" in body
    assert "results 1–2" in body
    assert body.index("mentions of France and Paris") < body.index("Italian cities")
    assert 'href="/gpt2-small/6-res-jb/200"' in body


def test_explanation_search_fragment_for_htmx_and_scope(client, embedded) -> None:
    body = client.get("/search-explanations", {"q": "about France", "model": "gpt2-small",
                                               "source": "6-res-jb"}, HTTP_HX_REQUEST="true").content.decode()
    assert body.lstrip().startswith('<section id="results"')
    assert "mentions of France" in body
    none = client.get("/search-explanations", {"q": "about France", "model": "gpt2-small",
                                               "source": "7-nope"}, HTTP_HX_REQUEST="true").content.decode()
    assert "No explanations matched" in none


def test_explanation_search_picker_mode_offers_add_buttons_with_max_act(client, embedded) -> None:
    body = client.get("/search-explanations", {"q": "about France", "picker": "1"},
                      HTTP_HX_REQUEST="true").content.decode()
    assert "add-steer-feature" in body
    assert 'data-max-act="9.5"' in body


def test_explanation_search_short_query_is_a_message(client, embedded) -> None:
    body = client.get("/search-explanations", {"q": "ab"}).content.decode()
    assert 'id="search-error"' in body
    assert "at least 3 characters" in body


def test_inference_and_topk_search_pages_carry_the_catalog(client, rich) -> None:
    for url in ("/search?model=gpt2-small&source_set=res-jb",
                "/search-topk?model=gpt2-small&source=6-res-jb"):
        body = client.get(url).content.decode()
        assert 'id="np-catalog"' in body
        assert "6-res-jb" in body
        assert "gpt2-small" in body


def test_feature_labels_json(client, rich) -> None:
    data = client.get("/ui/feature-labels", {"model": "gpt2-small", "keys": "6-res-jb:200,6-res-jb:7"}).json()
    assert data == {"6-res-jb:200": {"explanation": "mentions of France and Paris", "maxAct": 9.5,
                                     "density": 0.001, "snippet": None, "url": "/gpt2-small/6-res-jb/200"}}


def test_steer_page_prefills_features_from_the_link(client, rich) -> None:
    link = {"model": "gpt2-small", "features": "6-res-jb:200:9.5,bad,6-res-jb:201"}
    body = client.get("/steer", link).content.decode()
    assert 'data-source="6-res-jb" data-index="200"' in body
    assert 'value="9.5"' in body
    assert 'data-index="201"' in body
    assert 'value="40.0"' in body
    assert "Italian cities" in body
    assert 'id="out-DEFAULT"' in body
    assert 'id="out-STEERED"' in body
    assert "Orthogonal decomposition" in body


def _steer_rows(rich: dict[str, Any]) -> SteerOutput:
    common = {"model": rich["model"], "input_text": "Once", "temperature": 0.5, "num_tokens": 8, "seed": 16,
              "strength_multiplier": 2.0}
    default = SteerOutput.objects.create(cache_key="d" * 64, type="DEFAULT", output_text="Once upon a time",
                                         **common)
    steered = SteerOutput.objects.create(cache_key="s" * 64, type="STEERED", output_text="Once Paris Paris",
                                         connected_default_output=default, **common)
    SteerOutputFeature.objects.create(steer_output=steered, feature=rich["feature"], strength=9.5)
    return steered


def test_steer_share_page_reloads_the_cached_result(client, rich) -> None:
    steered = _steer_rows(rich)
    body = client.get(f"/steer/{steered.pk}").content.decode()
    assert "Once upon a time" in body
    assert "Once Paris Paris" in body
    assert 'href="/gpt2-small/6-res-jb/200">6-res-jb:200</a> ×9.5' in body
    assert f"http://testserver/steer/{steered.pk}" in body
    assert 'value="2.0"' in body
    default_id = steered.connected_default_output_id
    assert "Once Paris Paris" in client.get(f"/steer/{default_id}").content.decode()


def test_steer_embed_is_frameable(client, rich) -> None:
    steered = _steer_rows(rich)
    response = client.get(f"/embed/steer/{steered.pk}")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response.headers
    assert "Once Paris Paris" in response.content.decode()
