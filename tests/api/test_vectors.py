from __future__ import annotations

import pytest

from features.models import Feature, Source

pytestmark = pytest.mark.django_db


def _vector(**extra) -> dict:
    return {"modelId": "gpt2-small", "layerNumber": 6, "hookType": "hook_resid_pre",
            "vector": [0.5] * 768, "vectorDefaultSteerStrength": 20, "vectorLabel": "happy", **extra}


def test_vector_new_stores_a_feature_in_a_synthetic_source(alice_api, alice, catalog) -> None:
    body = alice_api.post("/api/vector/new", _vector(), format="json").json()
    vec = body["vector"]
    assert (vec["modelId"], vec["source"], vec["label"]) == ("gpt2-small", "6-neuronpedia-resid-pre", "happy")
    assert len(vec["index"]) == 8
    assert vec["hookName"] == "blocks.6.hook_resid_pre"
    feature = Feature.objects.get(source__name="6-neuronpedia-resid-pre", index=int(vec["index"]))
    assert feature.has_vector
    assert feature.creator == alice
    assert len(feature.vector) == 768
    assert body["url"].endswith(f"/gpt2-small/6-neuronpedia-resid-pre/{vec['index']}")
    alice_api.post("/api/vector/new", _vector(), format="json")
    assert Source.objects.filter(name="6-neuronpedia-resid-pre").count() == 1


@pytest.mark.parametrize(("extra", "field"), [
    ({"vector": [0.5] * 767}, "dimension"),
    ({"hookType": "hook_mlp_out"}, "hookType"),
    ({"layerNumber": 12}, "layerNumber"),
    ({"vectorDefaultSteerStrength": 301}, "vectorDefaultSteerStrength"),
    ({"modelId": "no-such-model"}, "Model not found"),
    ({"vectorLabel": ""}, "vectorLabel"),
])
def test_vector_new_validates(alice_api, catalog, extra, field) -> None:
    response = alice_api.post("/api/vector/new", _vector(**extra), format="json")
    assert response.status_code == 400
    assert field in response.json()["message"]


def test_vector_get_list_and_delete(alice_api, bob_api, anon, catalog) -> None:
    vec = alice_api.post("/api/vector/new", _vector(), format="json").json()["vector"]
    ref = {"modelId": "gpt2-small", "source": vec["source"], "index": vec["index"]}
    got = anon.post("/api/vector/get", ref, format="json").json()["vector"]
    assert (got["layer"], got["vectorLabel"]) == (vec["source"], "happy")
    assert got["vectorDefaultSteerStrength"] == 20
    assert [v["index"] for v in alice_api.post("/api/vector/list-owned").json()["vectors"]] == [vec["index"]]
    assert bob_api.post("/api/vector/list-owned").json() == {"vectors": []}
    assert bob_api.post("/api/vector/delete", ref, format="json").status_code == 403
    assert anon.post("/api/vector/delete", ref, format="json").status_code == 401
    assert alice_api.post("/api/vector/delete", ref, format="json").json() == {"message": "Success"}
    assert anon.post("/api/vector/get", ref, format="json").status_code == 404


def test_vector_get_of_a_non_vector_feature_is_404(anon, catalog) -> None:
    ref = {"modelId": "gpt2-small", "source": "6-res-jb", "index": 200}
    assert anon.post("/api/vector/get", ref, format="json").status_code == 404
