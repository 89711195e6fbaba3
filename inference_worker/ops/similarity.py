"""Decoder vectors and decoder cosine similarity."""

# ruff: noqa: F722  (jaxtyping shape strings)
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from inference_worker.ops.limits import DEFAULT_LIMITS, Limits
from inference_worker.protocol import CossimReply, DecoderVectorReply
from inference_worker.saes import Source


@dataclass(frozen=True)
class DecoderVector:
    source: str
    index: int
    hook_name: str
    vector: tuple[float, ...]

    def to_dict(self) -> DecoderVectorReply:
        return {"vector": list(self.vector), "hookName": self.hook_name}


@torch.inference_mode()
def decoder_vector(source: Source, index: int) -> DecoderVector:
    if not 0 <= index < source.d_sae:
        raise IndexError(f"feature {index} out of range for {source.id} (d_sae={source.d_sae})")
    return DecoderVector(source.id, index, source.hook_name,
                         tuple(source.W_dec[index].float().tolist()))


@dataclass(frozen=True)
class CossimResult:
    model_id: str
    source: str
    features: tuple[tuple[int, float], ...]  # (index, cosine), descending

    def to_dict(self) -> CossimReply:
        return {"topkDecoderCossimFeatures": [
            {"feature": {"model": self.model_id, "source": self.source, "index": i},
             "cosineSimilarity": c} for i, c in self.features]}


def decoder_cossim(W_dec: Float[Tensor, "d_sae d_in"], vector: Float[Tensor, " d_in"]
                   ) -> Float[Tensor, " d_sae"]:
    """Cosine of every decoder row with ``vector`` in fp32; NaN/zero rows become -inf."""
    w = W_dec.float()
    v = vector.to(device=w.device, dtype=torch.float32)
    cos = (w @ v) / (w.norm(dim=-1) * v.norm()).clamp_min(1e-12)
    zero_rows = w.norm(dim=-1) == 0
    return torch.where(torch.isfinite(cos) & ~zero_rows, cos, torch.full_like(cos, -torch.inf))


@torch.inference_mode()
def topk_by_decoder_cossim(source: Source, *, index: int | None = None,
                           vector: Tensor | Sequence[float] | None = None, num_results: int = 10,
                           model_id: str = "", limits: Limits = DEFAULT_LIMITS) -> CossimResult:
    """Top ``num_results`` features of ``source`` whose decoder rows are closest (cosine) to
    feature ``index`` of the same source or to a raw ``vector``."""
    if (index is None) == (vector is None):
        raise ValueError("give exactly one of index or vector")
    limits.check_num_results(num_results, limits.cossim_results_max, "cossim_results_max")
    if index is not None:
        target = torch.as_tensor(decoder_vector(source, index).vector)
    else:
        target = torch.as_tensor(vector, dtype=torch.float32)
        if target.shape != (source.d_in,):
            raise ValueError(f"vector has shape {tuple(target.shape)}; source d_in={source.d_in}")
    cos = decoder_cossim(source.W_dec, target)
    top = cos.topk(min(num_results, cos.shape[0]))
    feats = tuple((i, v) for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
                  if v != float("-inf"))
    return CossimResult(model_id, source.id, feats)
