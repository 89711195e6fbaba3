"""The worker's replies have the shapes inference_worker.protocol declares (mypy checks the code that
builds them; this checks the values, nested TypedDicts, lists and literals included)."""

from __future__ import annotations

import json
from typing import Any, Literal, get_args, get_origin, get_type_hints, is_typeddict

import pytest
import torch

from inference_worker import protocol
from inference_worker.ops import (
    ChatMessage,
    SteerRequest,
    SteerVector,
    activation_single,
    active_features,
    decoder_vector,
    search_all,
    steer,
    topk_by_decoder_cossim,
    topk_by_token,
)
from inference_worker.saes import SourceRegistry

TEXT = "The cat sat."
LAST = "blocks.1.hook_resid_post"


def conforms(value: Any, hint: Any) -> bool:
    if is_typeddict(hint):
        fields = get_type_hints(hint)
        return (isinstance(value, dict) and hint.__required_keys__ <= value.keys() <= fields.keys()
                and all(conforms(v, fields[k]) for k, v in value.items()))
    origin, args = get_origin(hint), get_args(hint)
    if origin is list:
        return isinstance(value, list) and all(conforms(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and conforms(v, args[1])
                                               for k, v in value.items())
    if origin is Literal:
        return value in args
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, hint)


def _steer(model: Any, **kw: Any) -> dict[str, Any]:
    vector = SteerVector(LAST, torch.ones(model.cfg.d_model), 2.0)
    return steer(model, SteerRequest(vectors=(vector,), n_tokens=2, n_logprobs=2, **kw)).to_dict()


def test_every_operation_reply_has_its_declared_shape(tiny_model: Any, registry: SourceRegistry) -> None:
    sae = registry.get("0-id")
    replies = [
        (activation_single(tiny_model, TEXT, source=sae, index=5).to_dict(), protocol.ActivationReply),
        (search_all(tiny_model, registry, TEXT, source_set="vec", num_results=4).to_dict(),
         protocol.SearchAllReply),
        (topk_by_token(tiny_model, sae, TEXT).to_dict(), protocol.TopkByTokenReply),
        (active_features(tiny_model, sae, TEXT).to_dict(), protocol.ActiveFeaturesReply),
        (decoder_vector(registry.get("0-vec"), 3).to_dict(), protocol.DecoderVectorReply),
        (topk_by_decoder_cossim(registry.get("0-vec"), index=7, num_results=3, model_id="tiny").to_dict(),
         protocol.CossimReply),
        (_steer(tiny_model, prompt="Hello"), protocol.SteerReply),
        (_steer(tiny_model, messages=(ChatMessage("user", "Hi"),)), protocol.SteerReply),
    ]
    for reply, shape in replies:
        assert conforms(reply, shape), (shape.__name__, reply)
        assert json.loads(json.dumps(reply)) == reply  # plain JSON: what Celery's serializer carries


def test_a_reply_missing_a_field_does_not_conform() -> None:
    assert not conforms({"vector": [1.0]}, protocol.DecoderVectorReply)
    assert not conforms({"vector": [1.0], "hookName": "h", "extra": 1}, protocol.DecoderVectorReply)
    assert not conforms({"type": "OTHER"}, protocol.SteerOutputReply)


@pytest.mark.parametrize(("reply", "expected"), [
    (protocol.ok_reply(protocol.DecoderVectorReply(vector=[0.5], hookName="blocks.0.hook_resid_post")),
     {"ok": True, "result": {"vector": [0.5], "hookName": "blocks.0.hook_resid_post"}}),
    (protocol.error_reply("feature 9 out of range", 404),
     {"ok": False, "error": "feature 9 out of range", "status": 404}),
])
def test_the_reply_envelope(reply: Any, expected: dict[str, Any]) -> None:
    assert reply == expected
