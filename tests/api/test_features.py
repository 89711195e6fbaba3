from __future__ import annotations

import pytest

from features.models import Activation, Explanation, ExplanationType, Feature, Visibility
from features.services import create_list
from tests import factories

pytestmark = pytest.mark.django_db
URL = "/api/feature/gpt2-small/6-res-jb/200"


def test_feature_get_returns_neuronpedia_shape(anon, catalog, alice) -> None:
    Explanation.objects.create(feature=catalog["feature"], description="Paris", score_v2=0.9)
    create_list(user=alice, name="public", items=[(catalog["feature"], "note")])
    catalog["feature"].lists.update(visibility=Visibility.PUBLIC)
    body = anon.get(URL).json()
    assert (body["modelId"], body["layer"], body["index"]) == ("gpt2-small", "6-res-jb", "200")
    assert body["frac_nonzero"] == pytest.approx(0.001)
    assert body["pos_str"] == [" Paris", " France"]
    assert [a["maxValue"] for a in body["activations"]] == [9.5, 4.0]
    assert body["activations"][0]["source"] == "6-res-jb"
    assert body["explanations"][0]["description"] == "Paris"
    assert body["model"]["dimension"] == 768
    assert body["sourceSet"]["name"] == "res-jb"
    assert body["source"]["setName"] == "res-jb"
    assert [x["name"] for x in body["lists"]] == ["public"]


@pytest.mark.parametrize("url", [URL.replace("200", "201"), URL.replace("200", "abc"),
                                 URL.replace("200", "99999999999"), "/api/feature/nope/6-res-jb/1"])
def test_feature_get_unknown_is_404_json(anon, catalog, url) -> None:
    response = anon.get(url)
    assert response.status_code == 404
    assert "not found" in response.json()["message"]


def test_private_model_features_are_hidden_from_strangers(anon, bob_api, catalog, alice) -> None:
    catalog["model"].visibility, catalog["model"].creator = Visibility.PRIVATE, alice
    catalog["model"].save()
    assert anon.get(URL).status_code == 404
    assert bob_api.get(URL).status_code == 404


def test_features_batch_keeps_order_and_caps_activations(anon, catalog) -> None:
    factories.make_feature(catalog["source"], 7)
    keys = [{"modelId": "gpt2-small", "layer": "6-res-jb", "index": i, "maxActsToReturn": 1}
            for i in (7, "200", 999)]
    body = anon.post("/api/features", keys, format="json").json()
    assert [f["index"] for f in body] == ["7", "200"]
    assert len(body[1]["activations"]) == 1


@pytest.mark.parametrize("payload", [{"modelId": "gpt2-small"}, [{"modelId": "x", "layer": "1-a"}],
                                     [{"modelId": "x", "layer": "1-a", "index": -1}]])
def test_features_batch_rejects_bad_input(anon, payload) -> None:
    response = anon.post("/api/features", payload, format="json")
    assert response.status_code == 400
    assert response.json()["message"]


def _upload(index: int = 3, **extra) -> dict:
    feature = {"index": index, "density": 0.01, "topLogits": [{"token": " cat", "value": 1.5}],
               "bottomLogits": [{"token": " dog", "value": -1.0}],
               "explanations": [{"text": "cats", "methodName": None, "modelName": None}],
               "activations": [{"tokens": ["a", " cat"], "values": [0.0, 2.5], "quantileMax": 3,
                                "quantileMin": 2, "quantileFraction": 0.5}], **extra}
    return {"modelId": "alice-model", "source": "1-alice-sae", "features": [feature]}


def test_upload_batch_creates_features_in_own_source(alice_api, alice_source) -> None:
    response = alice_api.post("/api/feature/upload-batch", _upload(), format="json")
    assert response.status_code == 200, response.json()
    feature = Feature.objects.get(source=alice_source, index=3)
    assert (feature.frac_nonzero, feature.max_act_approx, feature.pos_str) == (
        pytest.approx(0.01), 2.5, [" cat"])
    activation = Activation.objects.get(feature=feature)
    assert (activation.bin_contains, activation.max_value_token_index) == (0.5, 1)
    assert alice_api.get("/api/feature/alice-model/1-alice-sae/3").json()["explanations"][0][
        "description"] == "cats"


def test_reupload_replaces_the_feature(alice_api, alice_source) -> None:
    alice_api.post("/api/feature/upload-batch", _upload(), format="json")
    alice_api.post("/api/feature/upload-batch", _upload(density=0.5), format="json")
    assert Activation.objects.filter(feature__source=alice_source).count() == 1
    assert Feature.objects.get(source=alice_source, index=3).frac_nonzero == 0.5


def test_upload_batch_needs_key_and_ownership(anon, bob_api, alice_api, alice_source) -> None:
    response = anon.post("/api/feature/upload-batch", _upload(), format="json")
    assert response.status_code == 401
    assert "x-api-key" in response.json()["message"]
    assert bob_api.post("/api/feature/upload-batch", _upload(), format="json").status_code == 403
    missing = {**_upload(), "source": "0-nope"}
    assert alice_api.post("/api/feature/upload-batch", missing, format="json").status_code == 404


@pytest.mark.parametrize(("extra", "field"), [
    ({"index": 10_000_001}, "index"),
    ({"density": 2}, "density"),
    ({"topLogits": [{"token": "x", "value": 1}] * 21}, "topLogits"),
    ({"explanations": [{"text": "x" * 513}]}, "explanations"),
    ({"activations": [{"tokens": ["a"], "values": [1, 2]}]}, "activations"),
    ({"activations": [{"tokens": ["a"] * 1025, "values": [1] * 1025}]}, "activations"),
    ({"activations": [{"tokens": ["a\x00"], "values": [1]}]}, "activations"),
    ({"activations": [{"tokens": ["a"], "values": [1e39]}]}, "activations"),
    ({"explanations": [{"text": "x", "methodName": "no-such-method"}]}, "Invalid explanation"),
])
def test_upload_batch_validates(alice_api, alice_source, extra, field) -> None:
    response = alice_api.post("/api/feature/upload-batch", _upload(**extra), format="json")
    assert response.status_code == 400
    assert field in response.json()["message"]


def test_upload_batch_limits_batch_size_and_duplicates(alice_api, alice_source) -> None:
    too_many = {**_upload(), "features": [{"index": i} for i in range(129)]}
    assert alice_api.post("/api/feature/upload-batch", too_many, format="json").status_code == 400
    dupes = {**_upload(), "features": [{"index": 1}, {"index": 1}]}
    response = alice_api.post("/api/feature/upload-batch", dupes, format="json")
    assert response.status_code == 400
    assert "unique" in response.json()["message"]


def test_upload_batch_accepts_known_explanation_methods(alice_api, alice_source) -> None:
    ExplanationType.objects.create(name="np_max-act")
    payload = _upload(explanations=[{"text": "x", "methodName": "NP_MAX-ACT"}])
    assert alice_api.post("/api/feature/upload-batch", payload, format="json").status_code == 200
    assert Explanation.objects.get(description="x").type_id == "np_max-act"


def test_feature_reads_stay_at_a_few_queries(anon, catalog, django_assert_max_num_queries) -> None:
    for index in range(20):
        factories.make_activation(factories.make_feature(catalog["source"], index), ["a"], [1.0])
    keys = [{"modelId": "gpt2-small", "layer": "6-res-jb", "index": i} for i in range(20)]
    with django_assert_max_num_queries(5):
        assert anon.get(URL).status_code == 200
    with django_assert_max_num_queries(5):
        assert len(anon.post("/api/features", keys, format="json").json()) == 20
