"""Live-inference calls of the official Neuronpedia SDK (PyPI `neuronpedia`), run by test_sdk.py in a
separate interpreter (our project package is also named `neuronpedia`). Only the SDK's base URL constant
is replaced; requests and response parsing are the SDK's own.

Usage: python sdk_inference_scenarios.py BASE_URL MODEL_ID SOURCE   (API key in NEURONPEDIA_API_KEY)
"""

from __future__ import annotations

import sys

from neuronpedia.np_feature import SteerFeature
from neuronpedia.requests.activation_request import ActivationRequest
from neuronpedia.requests.base_request import NPRequest
from neuronpedia.requests.source_activation_request import SourceActivationRequest
from neuronpedia.requests.steer_request import SteerChatRequest, SteerCompletionRequest
from neuronpedia.requests.topk_by_token_request import TopKByTokenRequest


def main(model_id: str, source: str) -> None:
    activation = ActivationRequest().compute_activation_for_text(model_id, source, "3", "the cat")
    assert activation.tokens[-3:] == ["c", "a", "t"]
    assert len(activation.values) == len(activation.tokens)
    several = ActivationRequest().compute_activation_for_texts(model_id, source, 3, ["ab", "abc"])
    assert [len(a.tokens) for a in several] == [3, 4], several
    sparse = ActivationRequest().compute_all_source_activations_for_text(model_id, source, "abc")
    assert sparse[0]["activeFeatures"], sparse

    top = SourceActivationRequest().compute_top_features_for_text(model_id, source, "the cat", num_results=5)
    assert len(top) == 5, top
    assert all(a.source == source for a in top), top
    tops = SourceActivationRequest().compute_top_features_for_texts(model_id, [source], ["ab", "cd"],
                                                                    num_results=3)
    assert [len(t) for t in tops] == [3, 3], tops
    by_token = TopKByTokenRequest().compute_top_features_by_token_for_text(model_id, source, "abc", 3)
    assert [r.position for r in by_token] == [1, 2, 3], by_token
    assert len(by_token[0].topFeatures) == 3, by_token

    feature = SteerFeature(modelId=model_id, source=source, index=1, strength=8)
    steered = SteerCompletionRequest().steer_features(model_id, [feature], prompt="Once", n_tokens=6)
    assert steered["STEERED"].startswith("Once"), steered
    assert steered["id"], steered
    again = SteerCompletionRequest().steer_features(model_id, [feature], prompt="Once", n_tokens=6)
    assert again["id"] == steered["id"], (again, steered)
    chat = SteerChatRequest().steer_features(model_id, [feature], [{"role": "user", "content": "hi"}],
                                             [{"role": "user", "content": "hi"}], n_tokens=4)
    assert chat["STEERED"]["raw"], chat
    assert chat["DEFAULT"]["chatTemplate"][-1]["role"] == "assistant", chat


if __name__ == "__main__":
    NPRequest.BASE_URL = sys.argv[1]
    main(sys.argv[2], sys.argv[3])
    print("ok")
