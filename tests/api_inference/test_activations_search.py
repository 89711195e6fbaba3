"""activation/new, activation/source, search-all and search-topk-by-token through a real worker."""

from __future__ import annotations

from typing import Any

import pytest

from features import services
from features.models import Explanation, Model, Source
from tests import factories
from tests.api_inference.conftest import MODEL_ID, SOURCE, SOURCE_SET

pytestmark = pytest.mark.django_db(transaction=True)


def post(client: Any, path: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/{path}", body, format="json")


def test_activation_new_on_a_feature_and_on_a_user_vector(live: None, anon: Any, alice: Any) -> None:
    one = post(anon, "activation/new", {"feature": {"modelId": MODEL_ID, "source": SOURCE, "index": 3},
                                         "customText": "the cat sat"})
    assert one.status_code == 200, one.json()
    body = one.json()
    assert body["tokens"][-3:] == ["s", "a", "t"]
    assert len(body["values"]) == len(body["tokens"])
    assert body["maxValue"] == max(body["values"]) == body["values"][body["maxValueIndex"]]
    assert min(body["values"]) >= 0  # a ReLU feature

    # the SDK's shape: `layer` instead of `source`, a list of texts -> a list of results
    many = post(anon, "activation/new", {"feature": {"modelId": MODEL_ID, "layer": SOURCE, "index": "3"},
                                          "customText": ["the cat sat", "dogs"]})
    assert many.status_code == 200
    assert [r["values"] for r in many.json()][0] == body["values"]
    assert len(many.json()) == 2

    # a user vector e_3 at the same hook: its dot product is h_3, which the identity SAE's feature 3 clips
    model = Model.objects.get(pk=MODEL_ID)
    vector = services.create_vector(user=alice, model=model, layer=0, hook_type="hook_resid_post",
                                    values=[1.0 if i == 3 else 0.0 for i in range(model.dimension)],
                                    label="e3", default_steer_strength=5)
    got = post(anon, "activation/new", {"feature": {"modelId": MODEL_ID, "source": vector.source.name,
                                                     "index": vector.index}, "customText": "the cat sat"})
    assert got.status_code == 200, got.json()
    assert [max(v, 0.0) for v in got.json()["values"]] == pytest.approx(body["values"], abs=1e-4)
    assert min(got.json()["values"]) < 0  # a raw projection, not a ReLU

    assert post(anon, "activation/new", {"feature": {"modelId": MODEL_ID, "source": SOURCE, "index": 128},
                                          "customText": "x"}).status_code == 404
    assert post(anon, "activation/new", {"feature": {"modelId": MODEL_ID, "source": "5-nope", "index": 1},
                                          "customText": "x"}).status_code == 404
    too_long = post(anon, "activation/new", {"feature": {"modelId": MODEL_ID, "source": SOURCE, "index": 1},
                                              "customText": "x" * 100})
    assert too_long.status_code == 400
    assert "token_limit" in too_long.json()["message"]


def test_activation_source_is_a_sparse_map_of_every_active_feature(live: None, anon: Any) -> None:
    response = post(anon, "activation/source", {"modelId": MODEL_ID, "source": SOURCE, "customText": "abc"})
    assert response.status_code == 200, response.json()
    result = response.json()["results"][0]
    assert result["tokens"][-3:] == ["a", "b", "c"]
    active = result["activeFeatures"]
    # identity SAE: at every position exactly one of features i and 64 + i is active (when h_i != 0)
    per_position = [sum(1 for pairs in active.values() for pos, _ in pairs if pos == p)
                    for p in range(len(result["tokens"]))]
    assert all(count >= 60 for count in per_position), per_position
    single = post(anon, "activation/new", {"feature": {"modelId": MODEL_ID, "source": SOURCE, "index": 5},
                                            "customText": "abc"}).json()
    pairs = dict((int(p), v) for p, v in active.get("5", []))
    dense = [pairs.get(p, 0.0) for p in range(len(single["values"]))]
    assert dense == pytest.approx(single["values"], abs=1e-4)
    assert post(anon, "activation/source", {"modelId": MODEL_ID, "source": SOURCE,
                                             "customText": ["a"] * 5}).status_code == 400


def test_search_all_applies_the_density_threshold_from_our_database(live: None, anon: Any) -> None:
    body = {"modelId": MODEL_ID, "sourceSet": SOURCE_SET, "text": "the cat sat", "selectedLayers": [],
            "sortIndexes": [], "ignoreBos": True, "densityThreshold": -1, "numResults": 6}
    first = post(anon, "search-all/", body)  # the SDK's trailing slash
    assert first.status_code == 200, first.json()
    results = first.json()["result"]
    assert len(results) == 6
    assert [r["maxValue"] for r in results] == sorted((r["maxValue"] for r in results), reverse=True)
    assert all(r["neuron"] is None for r in results)
    top = [int(r["index"]) for r in results]

    source = Source.objects.get(model_id=MODEL_ID, name=SOURCE)
    for index in top[:2]:
        factories.make_feature(source, index, frac_nonzero=0.5)
    kept = factories.make_feature(source, top[2], frac_nonzero=0.01, max_act_approx=7.5)
    Explanation.objects.create(feature=kept, description="the letter t")

    filtered = post(anon, "search-all", {**body, "densityThreshold": 0.1}).json()["result"]
    assert len(filtered) == 6
    assert [int(r["index"]) for r in filtered][:4] == top[2:6]
    assert not {int(r["index"]) for r in filtered} & set(top[:2])
    neuron = filtered[0]["neuron"]
    assert neuron["maxActApprox"] == 7.5
    assert neuron["explanations"][0]["description"] == "the letter t"

    unfiltered = post(anon, "search-all", body).json()["result"]
    assert [int(r["index"]) for r in unfiltered] == top

    batch = post(anon, "search-all", {**body, "text": ["the cat", "a dog"], "selectedLayers": [SOURCE]})
    assert batch.status_code == 200
    assert [len(r["result"]) for r in batch.json()["results"]] == [6, 6]

    assert post(anon, "search-all", {**body, "numResults": 101}).status_code == 400
    assert post(anon, "search-all", {**body, "densityThreshold": 1.5}).status_code == 400
    assert post(anon, "search-all", {**body, "sourceSet": "nope"}).status_code == 404
    assert post(anon, "search-all", {**body, "selectedLayers": ["3-res-id"]}).status_code == 404
    bad_sort = post(anon, "search-all", {**body, "sortIndexes": [99]})
    assert bad_sort.status_code == 400
    assert "sortByTokenIndexes" in bad_sort.json()["message"]


def test_search_topk_by_token_with_a_density_filter(live: None, anon: Any) -> None:
    body = {"modelId": MODEL_ID, "source": SOURCE, "text": "abc", "numResults": 3, "ignoreBos": True}
    response = post(anon, "search-topk-by-token/", body)
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert [r["position"] for r in results] == [1, 2, 3]
    assert [r["token"] for r in results] == ["a", "b", "c"]
    assert all(len(r["topFeatures"]) == 3 for r in results)
    dense = results[0]["topFeatures"][0]["featureIndex"]
    factories.make_feature(Source.objects.get(model_id=MODEL_ID, name=SOURCE), dense, frac_nonzero=0.9)
    filtered = post(anon, "search-topk-by-token", {**body, "densityThreshold": 0.5}).json()["results"]
    assert dense not in [t["featureIndex"] for t in filtered[0]["topFeatures"]]
    assert len(filtered[0]["topFeatures"]) == 3
    batch = post(anon, "search-topk-by-token", {**body, "text": ["ab", "abc"]}).json()["results"]
    assert [len(r["results"]) for r in batch] == [2, 3]


def test_without_a_worker_inference_endpoints_answer_503(transactional_db: None, anon: Any) -> None:
    catalog = factories.make_catalog()
    feature = {"modelId": "gpt2-small", "source": "6-res-jb", "index": 200}
    for path, body in [
        ("activation/new", {"feature": feature, "customText": "hi"}),
        ("activation/source", {"modelId": "gpt2-small", "source": "6-res-jb", "customText": "hi"}),
        ("search-all", {"modelId": "gpt2-small", "sourceSet": "res-jb", "text": "hi"}),
        ("search-topk-by-token", {"modelId": "gpt2-small", "source": "6-res-jb", "text": "hi"}),
        ("steer", {"modelId": "gpt2-small", "prompt": "hi", "temperature": 0, "n_tokens": 4, "seed": 1,
                   "strength_multiplier": 1, "features": [{**feature, "layer": "6-res-jb", "strength": 4}]}),
    ]:
        response = post(anon, path, body)
        assert response.status_code == 503, (path, response.content)
        assert "no inference worker is serving model 'gpt2-small'" in response.json()["message"]
    assert catalog["feature"].index == 200
