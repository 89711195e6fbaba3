"""Feature activations on custom text: single feature, search-all, top-k by token."""

# ruff: noqa: F722  (jaxtyping shape strings)
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float
from torch import Tensor

from inference_worker.models import model_device
from inference_worker.ops.limits import DEFAULT_LIMITS, Limits
from inference_worker.ops.tokens import Tokenized, tokenize
from inference_worker.protocol import (
    ActivationReply,
    ActiveFeaturesReply,
    FeatureActivationReply,
    SearchAllReply,
    TokenTopFeaturesReply,
    TopkByTokenReply,
)
from inference_worker.saes import Source, SourceRegistry, hook_layer

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer


# ---------------------------------------------------------------- shared forward


def capture_hooks(model: HookedTransformer, tokens: Tokenized, hook_names: Sequence[str]
                  ) -> dict[str, Tensor]:
    """ONE forward pass, stopped after the deepest block needed, caching only ``hook_names``.

    Returns ``{hook: [pos, ...]}`` (batch dim removed).
    """
    wanted = set(hook_names)
    unknown = wanted - set(model.hook_dict)
    if unknown:
        raise ValueError(f"unknown hook(s) {sorted(unknown)} for model {model.cfg.model_name}")
    layers = [hook_layer(h) for h in wanted]
    stop: int | None = None
    if all(layer is not None for layer in layers):
        stop = max(1, max(layer for layer in layers if layer is not None) + 1)
        if stop >= model.cfg.n_layers:
            stop = None  # the last block is needed: run the whole model
    _, cache = model.run_with_cache(
        tokens.tensor(model_device(model)), names_filter=lambda name: name in wanted,
        stop_at_layer=stop, return_cache_object=False,
    )
    return {name: cache[name][0] for name in wanted}


def _encode(source: Source, acts: Tensor) -> Float[Tensor, "pos d_sae"]:
    return source.encode_hook_acts(acts[None])[0].float()


def _zero_first(values: Tensor, ignore_bos: bool) -> Tensor:
    """``ignore_bos`` zeroes position 0; callers pass it only when position 0 is a BOS (a model that
    adds none, like SmolLM2, keeps its first real token)."""
    if ignore_bos and values.shape[0] > 0:
        values = values.clone()
        values[0] = 0
    return values


# ---------------------------------------------------------------- activation single


@dataclass(frozen=True)
class ActivationResult:
    tokens: Tokenized
    values: tuple[float, ...]
    max_value: float
    max_value_index: int

    def to_dict(self) -> ActivationReply:
        return {
            "tokens": list(self.tokens.strings),
            "tokensIsSpecial": list(self.tokens.is_special),
            "activation": {"values": list(self.values), "maxValue": self.max_value,
                           "maxValueIndex": self.max_value_index},
        }


@torch.inference_mode()
def activation_single(model: HookedTransformer, text: str, *, source: Source | None = None,
                      index: int | None = None, vector: Tensor | Sequence[float] | None = None,
                      hook: str | None = None, prepend_bos: bool | None = None,
                      ignore_bos: bool = False, limits: Limits = DEFAULT_LIMITS
                      ) -> ActivationResult:
    """Per-token activation of one feature (``source`` + ``index``) or of a raw vector at
    ``hook`` (dot product). ``ignore_bos`` zeroes position 0 before taking the max."""
    if (source is None) == (vector is None):
        raise ValueError("give exactly one of (source, index) or (vector, hook)")
    tokens = tokenize(model, text, prepend_bos, limits)
    if source is not None:
        if index is None or not 0 <= index < source.d_sae:
            raise IndexError(f"feature index {index} out of range for {source.id}")
        acts = capture_hooks(model, tokens, [source.hook_name])[source.hook_name]
        values = _encode(source, acts)[:, index]  # [pos]
    else:
        if hook is None:
            raise ValueError("a raw vector needs a hook name")
        acts = capture_hooks(model, tokens, [hook])[hook]
        acts = acts.flatten(-2) if acts.ndim == 3 else acts  # hook_z [pos, h, d] → [pos, h*d]
        vec = torch.as_tensor(vector, dtype=torch.float32, device=acts.device)
        if vec.shape != (acts.shape[-1],):
            raise ValueError(f"vector has shape {tuple(vec.shape)}; hook {hook} has "
                             f"d={acts.shape[-1]}")
        values = acts.float() @ vec  # [pos]
    values = _zero_first(values, ignore_bos and tokens.starts_with_bos)
    max_idx = int(values.argmax())
    return ActivationResult(tokens, tuple(values.tolist()), float(values[max_idx]), max_idx)


# ---------------------------------------------------------------- search all


@dataclass(frozen=True)
class FeatureActivation:
    source: str
    index: int
    values: tuple[float, ...]
    max_value: float
    max_value_index: int
    sum_values: float

    def to_dict(self) -> FeatureActivationReply:
        return {"source": self.source, "index": self.index, "values": list(self.values),
                "maxValue": self.max_value, "maxValueIndex": self.max_value_index,
                "sumValues": self.sum_values}


@dataclass(frozen=True)
class SearchAllResult:
    tokens: Tokenized
    activations: tuple[FeatureActivation, ...]

    def to_dict(self) -> SearchAllReply:
        return {"tokens": list(self.tokens.strings),
                "activations": [a.to_dict() for a in self.activations]}


def _check_positions(positions: Sequence[int], n_tokens: int) -> list[int]:
    bad = [p for p in positions if not 0 <= p < n_tokens]
    if bad:
        raise ValueError(f"sortByTokenIndexes {bad} outside 0..{n_tokens - 1}")
    return list(dict.fromkeys(positions))


@torch.inference_mode()
def search_all(model: HookedTransformer, registry: SourceRegistry, text: str, *,
               source_set: str, selected_sources: Sequence[str] = (),
               sort_by_token_indexes: Sequence[int] = (), ignore_bos: bool = True,
               num_results: int = 25, prepend_bos: bool | None = None,
               limits: Limits = DEFAULT_LIMITS) -> SearchAllResult:
    """Top features across sources of a set: one forward pass, running top-K per source, merge.

    Sort key: max over positions, or the sum at ``sort_by_token_indexes`` when given. Only
    features with a positive key are returned. ``sumValues`` is the sum at the sort positions
    (all positions when none are given).
    """
    limits.check_num_results(num_results)
    sources = registry.in_set(source_set, selected_sources)
    tokens = tokenize(model, text, prepend_bos, limits)
    positions = _check_positions(sort_by_token_indexes, len(tokens))
    hook_acts = capture_hooks(model, tokens, [s.hook_name for s in sources])
    candidates: list[tuple[float, int, int]] = []  # (key, source number, feature index)
    per_source: list[Tensor] = []
    for n, source in enumerate(sources):
        acts = _zero_first(_encode(source, hook_acts[source.hook_name]),
                           ignore_bos and tokens.starts_with_bos)  # [pos, d_sae]
        per_source.append(acts)
        key = acts[positions].sum(0) if positions else acts.max(0).values  # [d_sae]
        top = key.topk(min(num_results, key.shape[0]))
        candidates += [(v, n, i) for v, i in zip(top.values.tolist(), top.indices.tolist(),
                                                  strict=True) if v > 0]
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    out = []
    for _, n, i in candidates[:num_results]:
        col = per_source[n][:, i]  # [pos]
        max_idx = int(col.argmax())
        total = col[positions].sum() if positions else col.sum()
        out.append(FeatureActivation(sources[n].id, i, tuple(col.tolist()), float(col[max_idx]),
                                     max_idx, float(total)))
    return SearchAllResult(tokens, tuple(out))


# ---------------------------------------------------------------- top-k by token


@dataclass(frozen=True)
class TokenTopFeatures:
    token: str
    position: int
    is_special: bool
    features: tuple[tuple[int, float], ...]  # (featureIndex, activationValue), descending

    def to_dict(self) -> TokenTopFeaturesReply:
        return {"token": self.token, "tokenPosition": self.position, "isSpecial": self.is_special,
                "topFeatures": [{"featureIndex": i, "activationValue": v}
                                for i, v in self.features]}


@dataclass(frozen=True)
class TopkByTokenResult:
    tokens: Tokenized
    results: tuple[TokenTopFeatures, ...]

    def to_dict(self) -> TopkByTokenReply:
        return {"tokens": list(self.tokens.strings), "results": [r.to_dict() for r in self.results]}


@torch.inference_mode()
def topk_by_token(model: HookedTransformer, source: Source, text: str, *, top_k: int = 5,
                  ignore_bos: bool = True, prepend_bos: bool | None = None,
                  limits: Limits = DEFAULT_LIMITS) -> TopkByTokenResult:
    """Per position, the ``top_k`` most active features of one source (position 0 skipped when
    ``ignore_bos``). Zero activations are left out."""
    limits.check_num_results(top_k)
    tokens = tokenize(model, text, prepend_bos, limits)
    acts = _encode(source, capture_hooks(model, tokens, [source.hook_name])[source.hook_name])
    top = acts.topk(min(top_k, source.d_sae), dim=-1)  # [pos, k]
    results = []
    for pos in range(1 if ignore_bos and tokens.starts_with_bos else 0, len(tokens)):
        feats = tuple((i, v) for v, i in zip(top.values[pos].tolist(), top.indices[pos].tolist(),
                                              strict=True) if v > 0)
        results.append(TokenTopFeatures(tokens.strings[pos], pos, tokens.is_special[pos], feats))
    return TopkByTokenResult(tokens, tuple(results))


@dataclass(frozen=True)
class ActiveFeaturesResult:
    tokens: Tokenized
    active: dict[int, tuple[tuple[int, float], ...]]  # feature index -> ((position, value), ...)

    def to_dict(self) -> ActiveFeaturesReply:
        return {"tokens": list(self.tokens.strings),
                "activeFeatures": {str(i): [[pos, value] for pos, value in hits]
                                   for i, hits in self.active.items()}}


@torch.inference_mode()
def active_features(model: HookedTransformer, source: Source, text: str, *, ignore_bos: bool = False,
                    prepend_bos: bool | None = None, limits: Limits = DEFAULT_LIMITS) -> ActiveFeaturesResult:
    """Every non-zero activation of one source on the text, as feature -> [(position, value)] (the whole
    sparse SAE output, however many features fire per token), positions in increasing order."""
    tokens = tokenize(model, text, prepend_bos, limits)
    acts = _encode(source, capture_hooks(model, tokens, [source.hook_name])[source.hook_name])
    if ignore_bos:
        acts = acts.clone()
        acts[0] = 0
    positions, features = torch.nonzero(acts > 0, as_tuple=True)  # row-major: sorted by position
    values = acts[positions, features].float().tolist()
    active: dict[int, list[tuple[int, float]]] = {}
    for pos, feature, value in zip(positions.tolist(), features.tolist(), values, strict=True):
        active.setdefault(feature, []).append((pos, value))
    return ActiveFeaturesResult(tokens, {f: tuple(hits) for f, hits in sorted(active.items())})
