from __future__ import annotations

from typing import Any

import pytest
import torch

from inference_worker.ops import (
    ChatMessage,
    LimitError,
    Limits,
    SteerFeature,
    SteerRequest,
    SteerVector,
    apply_steering,
    steer,
    steer_stream,
)
from inference_worker.saes import SourceRegistry

LAST = "blocks.1.hook_resid_post"


def _vec_request(vector: torch.Tensor, strength: float, **kw: Any) -> SteerRequest:
    kw.setdefault("n_tokens", 6)
    return SteerRequest(prompt=kw.pop("prompt", "Hello"),
                        vectors=(SteerVector(kw.pop("hook", LAST), vector, strength),), **kw)


def test_orthogonal_decomp_with_coeff_one_is_identity() -> None:
    h, v = torch.randn(2, 5, 16), torch.randn(16)
    assert torch.allclose(apply_steering(h, v, 1.0, "ORTHOGONAL_DECOMP"), h, atol=1e-5)
    out = apply_steering(h, v, 3.0, "ORTHOGONAL_DECOMP")
    unit = v / v.norm()
    assert torch.allclose(out @ unit, 3 * (h @ unit), atol=1e-4)  # component along v rescaled
    rest = h - (h @ unit)[..., None] * unit
    assert torch.allclose(out - (out @ unit)[..., None] * unit, rest, atol=1e-4)


def test_projection_cap_clamps_only_above_cap() -> None:
    v = torch.tensor([2.0, 0.0])
    h = torch.tensor([[5.0, 1.0], [-3.0, 4.0]])
    out = apply_steering(h, v, 1.5, "PROJECTION_CAP")
    assert torch.equal(out, torch.tensor([[1.5, 1.0], [-3.0, 4.0]]))


def test_simple_additive() -> None:
    h, v = torch.zeros(1, 2, 3), torch.tensor([1.0, 2.0, 3.0])
    assert torch.equal(apply_steering(h, v, 2.0, "SIMPLE_ADDITIVE")[0, 1], 2 * v)


def test_unembedding_direction_raises_that_token(tiny_model: Any) -> None:
    target = tiny_model.tokenizer.convert_tokens_to_ids("Q")
    direction = tiny_model.W_U[:, target].detach()
    res = steer(tiny_model, _vec_request(direction, 8.0, n_tokens=1, n_logprobs=3))
    steered, default = res.output("STEERED"), res.output("DEFAULT")
    assert default.token_ids[0] != target
    assert steered.token_ids[0] == target
    assert steered.logprobs is not None
    assert default.logprobs is not None
    assert steered.logprobs[0].logprob > default.logprobs[0].logprob
    # a small push already raises the target's log-probability (full distribution requested)
    vocab = tiny_model.cfg.d_vocab
    weak = steer(tiny_model, _vec_request(direction, 0.3, n_tokens=1, n_logprobs=vocab),
                 limits=Limits(max_logprobs=vocab))
    lp = dict(weak.output("STEERED").logprobs[0].top)  # type: ignore[index]
    lp_default = dict(weak.output("DEFAULT").logprobs[0].top)  # type: ignore[index]
    assert lp["Q"] > lp_default["Q"]


def test_default_is_identical_across_runs_cache_and_batching(tiny_model: Any) -> None:
    v = torch.randn(64)
    kw = {"temperature": 0.9, "seed": 7, "n_tokens": 12}
    both = steer(tiny_model, _vec_request(v, 4.0, **kw)).output("DEFAULT")
    alone = steer(tiny_model, _vec_request(v, 4.0, types=("DEFAULT",), **kw)).output("DEFAULT")
    again = steer(tiny_model, _vec_request(v, 4.0, types=("DEFAULT",), **kw)).output("DEFAULT")
    no_kv = steer(tiny_model, _vec_request(v, 4.0, use_kv_cache=False, **kw)).output("DEFAULT")
    assert both.token_ids == alone.token_ids == again.token_ids == no_kv.token_ids


def test_steered_kv_cache_matches_full_recompute(tiny_model: Any) -> None:
    v = torch.randn(64)
    a = steer(tiny_model, _vec_request(v, 3.0, n_tokens=10)).output("STEERED")
    b = steer(tiny_model, _vec_request(v, 3.0, n_tokens=10, use_kv_cache=False)).output("STEERED")
    assert a.token_ids == b.token_ids


def test_seed_changes_sampling(tiny_model: Any) -> None:
    v = torch.zeros(64)
    outs = {steer(tiny_model, _vec_request(v, 1.0, temperature=1.5, seed=s, n_tokens=10))
            .output("DEFAULT").text for s in range(4)}
    assert len(outs) > 1


def test_feature_steering_uses_decoder_row_times_multiplier(tiny_model: Any,
                                                           registry: SourceRegistry) -> None:
    req = SteerRequest(prompt="Hi", features=(SteerFeature("1-id", 3, 2.0),),
                       strength_multiplier=2.5, n_tokens=3)
    vec_req = _vec_request(torch.nn.functional.one_hot(torch.tensor(3), 64).float(), 5.0,
                           prompt="Hi", n_tokens=3)
    a = steer(tiny_model, req, registry).output("STEERED")
    b = steer(tiny_model, vec_req).output("STEERED")
    assert a.token_ids == b.token_ids


def test_streaming_yields_growing_whole_text(tiny_model: Any) -> None:
    frames = list(steer_stream(tiny_model, _vec_request(torch.randn(64), 2.0, n_tokens=5)))
    assert frames[-1].done
    assert not frames[0].done
    texts = [f.to_dict()["outputs"][0]["output"] for f in frames]
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:], strict=False))
    assert texts[0].startswith("Hello")


def test_chat_mode_and_special_token_mask(tiny_model: Any) -> None:
    """Position 0 (<|im_start|>) attends only to itself: with steer_special_tokens=False its
    residual after the steered hook equals DEFAULT's; with True it differs."""
    v, msgs = torch.randn(64), (ChatMessage("user", "hey"),)
    first_chunk: list[torch.Tensor] = []

    def spy(act: torch.Tensor, hook: Any) -> None:
        if act.shape[1] > 1:
            first_chunk.append(act.detach().clone())

    for special in (True, False):
        req = SteerRequest(messages=msgs, vectors=(SteerVector("blocks.0.hook_resid_post", v,
                                                               20.0),),
                           n_tokens=2, steer_special_tokens=special)
        with tiny_model.hooks(fwd_hooks=[("blocks.1.hook_resid_pre", spy)]):
            res = steer(tiny_model, req)
        d = res.to_dict()
        assert d["input"]["raw"] == "<|im_start|>user\nhey<|im_end|>\n<|im_start|>assistant\n"
        assert d["outputs"][0]["chatTemplate"][-1]["role"] == "assistant"
        assert d["outputs"][0]["raw"].startswith(d["input"]["raw"])
    steered_all, steered_text = first_chunk
    assert not torch.allclose(steered_all[0, 0], steered_all[1, 0])
    assert torch.allclose(steered_text[0, 0], steered_text[1, 0])
    assert not torch.allclose(steered_text[0, 2], steered_text[1, 2])  # "s" of "user": steered


def test_special_positions_are_not_steered_when_switch_off(tiny_model: Any) -> None:
    from inference_worker.ops.steering import _steer_mask
    from inference_worker.ops.tokens import special_ids

    specials = special_ids(tiny_model.tokenizer)
    ids = tiny_model.tokenizer("<|im_start|>ab<|im_end|>", add_special_tokens=False)["input_ids"]
    chunk = torch.tensor([ids, ids])
    mask = _steer_mask(chunk, torch.tensor([True, False]), specials, skip_special=True)
    assert mask.tolist() == [[False, True, True, False], [False] * 4]
    assert _steer_mask(chunk, torch.tensor([True, False]), specials, False)[0].all()


def test_limits_raise_named_errors(tiny_model: Any) -> None:
    v = torch.randn(64)
    limits = Limits(max_new_tokens=8, strength_min=-10, strength_max=10,
                    strength_multiplier_max=2)
    with pytest.raises(LimitError, match="max_new_tokens"):
        steer(tiny_model, _vec_request(v, 1.0, n_tokens=9), limits=limits)
    with pytest.raises(LimitError, match="strength range"):
        steer(tiny_model, _vec_request(v, 11.0), limits=limits)
    with pytest.raises(LimitError, match="strength_multiplier_max"):
        steer(tiny_model, _vec_request(v, 1.0, strength_multiplier=3.0), limits=limits)
    with pytest.raises(LimitError, match="token_limit"):
        steer(tiny_model, _vec_request(v, 1.0, prompt="x" * 50), limits=Limits(token_limit=20))


def test_request_validation() -> None:
    with pytest.raises(ValueError, match="exactly one of features or vectors"):
        SteerRequest(prompt="a")
    with pytest.raises(ValueError, match="prompt or messages"):
        SteerRequest(types=("DEFAULT",))
    with pytest.raises(ValueError, match="steer_method"):
        SteerRequest(prompt="a", types=("DEFAULT",), steer_method="BOGUS")  # type: ignore[arg-type]


def test_eos_stops_generation_and_to_dict_shape(tiny_model: Any) -> None:
    eos = tiny_model.tokenizer.eos_token_id
    res = steer(tiny_model, _vec_request(tiny_model.W_U[:, eos].detach(), 50.0, n_tokens=5,
                                         n_logprobs=2))
    steered = res.output("STEERED")
    assert steered.finished
    assert steered.token_ids == ()
    assert res.done
    out = res.to_dict()["outputs"]
    assert [o["type"] for o in out] == ["STEERED", "DEFAULT"]
    assert set(out[1]["logprobs"][0]) == {"token", "logprob", "topLogprobs"}


def test_attention_hook_z_steering_flattens_heads(tiny_model: Any) -> None:
    v = torch.randn(64)  # n_heads * d_head
    res = steer(tiny_model, _vec_request(v, 5.0, hook="blocks.0.attn.hook_z", n_tokens=3))
    default = steer(tiny_model, _vec_request(v, 0.0, hook="blocks.0.attn.hook_z", n_tokens=3))
    assert res.output("DEFAULT").token_ids == default.output("STEERED").token_ids
    with pytest.raises(ValueError, match="has d="):
        steer(tiny_model, _vec_request(torch.randn(10), 1.0, n_tokens=1))


def test_end_of_turn_token_also_stops(tiny_model: Any) -> None:
    from inference_worker.ops.steering import stop_token_ids

    im_end = tiny_model.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in stop_token_ids(tiny_model.tokenizer)
    res = steer(tiny_model, _vec_request(tiny_model.W_U[:, im_end].detach(), 50.0, n_tokens=4,
                                         types=("STEERED",)))
    assert res.outputs[0].finished
    assert res.outputs[0].text == ""
