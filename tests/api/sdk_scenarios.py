"""Scenarios run by test_sdk.py in a separate interpreter with the official Neuronpedia SDK (PyPI
`neuronpedia`). A separate process is needed because our Django project package is also named
`neuronpedia` and would shadow the SDK.

Usage: python sdk_scenarios.py BASE_URL SCENARIO   (API key in NEURONPEDIA_API_KEY)

The SDK fixes its base URL when imported (`https://neuronpedia.org/api`, or `http://localhost:3000/api`
with USE_LOCALHOST=true); the test server listens on a free port, so only that constant,
`NPRequest.BASE_URL`, is replaced. Requests, headers and response parsing are the SDK's own.
"""

from __future__ import annotations

import sys

from neuronpedia.np_activation import Activation
from neuronpedia.np_explanation import Explanation
from neuronpedia.np_feature import Feature, Logit
from neuronpedia.np_list import NPList, NPListItem
from neuronpedia.np_model import Model
from neuronpedia.np_sae_feature import SAEFeature
from neuronpedia.np_source_set import SourceSet
from neuronpedia.np_vector import NPVector
from neuronpedia.requests.activation_request import ActivationRequest
from neuronpedia.requests.base_request import NPRateLimitError, NPRequest, NPUnauthorizedError
from neuronpedia.requests.feature_request import FeatureRequest


def byo_model_source_set_features() -> None:
    model = Model.new("pup-model", 2, display_name="Pup", url="https://example.org/pup")
    assert (model.id, model.layers, model.display_name) == ("pup-model", 2, "Pup"), model
    source = SourceSet.new("pupscope", "pup-model", description="Pups").get_source_for_layer_number(1)
    assert source.id == "1-pupscope", source
    feature = Feature(modelId="pup-model", source="1-pupscope", index=3, density=0.02,
                      top_logits=[Logit(" bark", 1.5)], bottom_logits=[Logit(" meow", -1.0)],
                      explanations=[Explanation("pup-model", "1-pupscope", 3, "dogs barking")],
                      activations=[Activation("pup-model", "1-pupscope", 3, ["the", " dog"], [0.0, 4.0],
                                              quantileMax=4.0, quantileMin=3.0, quantileFraction=0.1)])
    assert "1 features" in source.upload_batch([feature])["message"]
    got = FeatureRequest().get("pup-model", "1-pupscope", 3)
    assert abs(got.density - 0.02) < 1e-6, got
    assert got.explanations[0].text == "dogs barking", got
    assert got.activations[0].values == [0.0, 4.0], got
    assert got.activations[0].quantileFraction == 0.1, got
    assert SAEFeature.get("pup-model", "1-pupscope", "3").index == "3"
    assert SourceSet.get("pup-model", "pupscope").description == "Pups"


def lists_and_vectors() -> None:
    nplist = NPList.new("my list", "from the SDK")
    nplist = nplist.add_items([NPListItem("gpt2-small", "6-res-jb", "200", "capitals")])
    assert [(i.model_id, i.source, i.index) for i in nplist.items] == [("gpt2-small", "6-res-jb", "200")]
    assert [i.index for i in NPList.get(nplist.id).items] == ["200"]
    assert [x.name for x in NPList.get_owned()] == ["my list"]
    feature = Feature.get("gpt2-small", "6-res-jb", 200)
    assert [a.values[-1] for a in feature.activations] == [9.5, 4.0], feature

    vector = NPVector.new("happy", "gpt2-small", 6, "hook_resid_post", [0.25] * 768, 12)
    assert vector.source == "6-neuronpedia-resid-post", vector
    assert vector.default_steer_strength == 12, vector
    assert NPVector.get("gpt2-small", vector.source, vector.index) == vector
    assert [v.index for v in NPVector.get_owned()] == [vector.index]
    vector.upload_activations([Activation("gpt2-small", vector.source, vector.index, ["a", "b"], [1.0, 2.0])])
    stored = FeatureRequest().get("gpt2-small", vector.source, vector.index)
    assert stored.activations[0].values == [1.0, 2.0], stored
    vector.delete()
    assert NPVector.get_owned() == []


def errors() -> None:
    try:
        ActivationRequest(api_key="np_not-a-key").upload_batch("gpt2-small", "6-res-jb", "200", [])
    except NPUnauthorizedError:
        pass
    else:
        raise AssertionError("a bad key must raise NPUnauthorizedError")
    try:
        for _ in range(3):
            NPList.get_owned()
    except NPRateLimitError:
        return
    raise AssertionError("the third call must be rate limited")


if __name__ == "__main__":
    NPRequest.BASE_URL = sys.argv[1]
    scenarios = {"byo": byo_model_source_set_features, "lists_vectors": lists_and_vectors, "errors": errors}
    scenarios[sys.argv[2]]()
    print("ok")
