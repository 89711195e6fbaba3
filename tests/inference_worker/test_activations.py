from __future__ import annotations

from typing import Any

import pytest
import torch

from inference_worker.ops import (
    LimitError,
    Limits,
    activation_single,
    active_features,
    search_all,
    tokenize,
    topk_by_token,
)
from inference_worker.saes import SourceRegistry
from tests.inference_worker.conftest import resid

TEXT = "The cat sat."


def test_tokenize_bos_handling(tiny_model: Any) -> None:
    with_bos = tokenize(tiny_model, "ab")
    assert with_bos.ids[0] == tiny_model.tokenizer.bos_token_id
    assert with_bos.is_special == (True, False, False)
    assert tokenize(tiny_model, "ab", prepend_bos=False).strings == ("a", "b")
    assert len(tokenize(tiny_model, "<|endoftext|>ab")) == 3  # BOS not doubled
    assert tokenize(tiny_model, "ab").to_dict()["prependBos"] is True


def test_prompt_token_limit(tiny_model: Any) -> None:
    with pytest.raises(LimitError, match="token_limit"):
        tokenize(tiny_model, "x" * 20, limits=Limits(token_limit=10))


def test_identity_sae_gives_relu_of_residual(tiny_model: Any, registry: SourceRegistry) -> None:
    ref = resid(tiny_model, TEXT, "blocks.0.hook_resid_post")  # [pos, d]
    res = activation_single(tiny_model, TEXT, source=registry.get("0-id"), index=5)
    expected = ref[:, 5].relu()
    assert torch.allclose(torch.tensor(res.values), expected, atol=1e-5)
    assert res.max_value_index == int(expected.argmax())
    d = res.to_dict()
    assert d["tokens"][0] == "<|endoftext|>"
    assert d["activation"]["maxValue"] == res.max_value


def test_raw_vector_activation_is_dot_product(tiny_model: Any) -> None:
    v = torch.randn(64)
    res = activation_single(tiny_model, TEXT, vector=v.tolist(), hook="blocks.1.hook_resid_pre")
    ref = resid(tiny_model, TEXT, "blocks.1.hook_resid_pre") @ v
    assert torch.allclose(torch.tensor(res.values), ref, atol=1e-4)


def test_search_all_runs_one_forward_pass(tiny_model: Any, registry: SourceRegistry,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    forward = tiny_model.forward
    monkeypatch.setattr(tiny_model, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k))
    res = search_all(tiny_model, registry, TEXT, source_set="vec", num_results=10)
    assert len(calls) == 1
    assert {a.source for a in res.activations} <= {"0-vec", "1-vec"}
    assert len(res.activations) == 10


def test_search_all_stops_after_deepest_needed_layer(tiny_model: Any, registry: SourceRegistry
                                                     ) -> None:
    seen: list[str] = []
    hook = ("blocks.1.hook_resid_pre", lambda act, hook: seen.append(hook.name))
    with tiny_model.hooks(fwd_hooks=[hook]):
        search_all(tiny_model, registry, TEXT, source_set="id", selected_sources=["0-id"])
    assert seen == []


def test_search_all_sorted_by_max_matches_brute_force(tiny_model: Any, registry: SourceRegistry
                                                      ) -> None:
    res = search_all(tiny_model, registry, TEXT, source_set="id", num_results=5, ignore_bos=True)
    brute = []
    for layer in (0, 1):
        acts = torch.cat([resid(tiny_model, TEXT, f"blocks.{layer}.hook_resid_post"),
                          -resid(tiny_model, TEXT, f"blocks.{layer}.hook_resid_post")], 1).relu()
        acts[0] = 0
        brute += [(float(m), f"{layer}-id", i) for i, m in enumerate(acts.max(0).values)]
    brute.sort(reverse=True)
    got = [(a.source, a.index) for a in res.activations]
    assert got == [(s, i) for _, s, i in brute[:5]]
    maxes = [a.max_value for a in res.activations]
    assert maxes == sorted(maxes, reverse=True)
    assert all(a.values[0] == 0 for a in res.activations)  # BOS ignored


def test_search_all_sorts_by_sum_at_token_indexes(tiny_model: Any, registry: SourceRegistry
                                                  ) -> None:
    res = search_all(tiny_model, registry, TEXT, source_set="id", sort_by_token_indexes=[2, 3],
                     num_results=3)
    sums = [a.sum_values for a in res.activations]
    assert sums == sorted(sums, reverse=True)
    first = res.activations[0]
    assert first.sum_values == pytest.approx(first.values[2] + first.values[3], rel=1e-5)
    with pytest.raises(ValueError, match="sortByTokenIndexes"):
        search_all(tiny_model, registry, TEXT, source_set="id", sort_by_token_indexes=[99])


def test_search_all_num_results_cap(tiny_model: Any, registry: SourceRegistry) -> None:
    with pytest.raises(LimitError, match="num_results_max"):
        search_all(tiny_model, registry, TEXT, source_set="id", num_results=11,
                   limits=Limits(num_results_max=10))
    d = search_all(tiny_model, registry, TEXT, source_set="id", num_results=2).to_dict()
    assert set(d["activations"][0]) == {"source", "index", "values", "maxValue",
                                        "maxValueIndex", "sumValues"}


def test_topk_by_token_is_ordered_per_position(tiny_model: Any, registry: SourceRegistry
                                               ) -> None:
    res = topk_by_token(tiny_model, registry.get("0-id"), TEXT, top_k=4)
    ref = resid(tiny_model, TEXT, "blocks.0.hook_resid_post")
    assert [r.position for r in res.results] == list(range(1, len(res.tokens)))  # BOS skipped
    for r in res.results:
        values = [v for _, v in r.features]
        assert values == sorted(values, reverse=True)
        assert len(values) == 4
        i, v = r.features[0]
        full = torch.cat([ref[r.position], -ref[r.position]]).relu()
        assert i == int(full.argmax())
        assert v == pytest.approx(float(full.max()), abs=1e-5)
    first = res.to_dict()["results"][0]
    assert set(first) == {"token", "tokenPosition", "isSpecial", "topFeatures"}


def test_activation_at_embedding_hook(tiny_model: Any) -> None:
    v = torch.randn(64)
    res = activation_single(tiny_model, TEXT, vector=v, hook="hook_embed")
    ref = resid(tiny_model, TEXT, "hook_embed") @ v
    assert torch.allclose(torch.tensor(res.values), ref, atol=1e-5)
    with pytest.raises(ValueError, match="unknown hook"):
        activation_single(tiny_model, TEXT, vector=v, hook="blocks.7.hook_resid_post")


def test_active_features_is_the_whole_sparse_output(tiny_model: Any, registry: SourceRegistry) -> None:
    source = registry.get("0-id")
    ref = resid(tiny_model, TEXT, "blocks.0.hook_resid_post")
    expected = torch.cat([ref, -ref], dim=-1).relu()  # identity SAE: features i and d + i
    result = active_features(tiny_model, source, TEXT)
    dense = torch.zeros_like(expected)
    for feature, hits in result.active.items():
        assert [pos for pos, _ in hits] == sorted(pos for pos, _ in hits)
        for pos, value in hits:
            dense[pos, feature] = value
    assert torch.allclose(dense, expected, atol=1e-5)
    per_token = (expected > 0).sum(dim=-1)
    assert int(per_token.max()) > 5  # more than a top-k of 5 would report: nothing is cut off
    without_bos = active_features(tiny_model, source, TEXT, ignore_bos=True)
    assert all(pos > 0 for hits in without_bos.active.values() for pos, _ in hits)
    as_json = result.to_dict()
    assert as_json["tokens"] == list(result.tokens.strings)
    assert sum(len(v) for v in as_json["activeFeatures"].values()) == int((expected > 0).sum())
