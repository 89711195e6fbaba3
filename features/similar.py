"""Cross-source similar features (issue 18): decoder cosine similarity of each feature against the features
of every other source of the same model (same d_model), top-k stored per (feature, other source).

Decoder directions come from what the catalog holds: an SAE-Lens folder (`local_path` with
`sae_weights.safetensors`, key `W_dec`), else the features' stored vectors (vector sources). Sources with
neither (most imports: Neuronpedia exports carry no weights) are skipped and reported. The work is a chunked
matrix product on the CPU (float32): d_sae_a × d_sae_b × d_model multiply-adds per pair of sources.

`plan_similar` loads the decoders and says what will be compared (or why nothing can be); `compute_source`
(re)computes one source's rows against every partner, chunk by chunk. The job around them (progress, the
per-source checkpoint, the Celery task) is features/similar_jobs.py. Safe to run twice: rows are upserted on
(feature, other source), and a source's rows against sources it is no longer compared with are deleted, so a
re-run replaces the source's rows and never duplicates them.
"""

# ruff: noqa: F722  (jaxtyping shape strings)
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float

from features.models import CrossSourceSimilarity, Feature, Source

CHUNK = 2048
WRITE_BATCH = 2000


class NothingToCompare(ValueError):
    """The model has too few sources with decoder weights of one width (or none of the named ones)."""


@dataclass
class Decoder:
    source: Source
    indices: np.ndarray  # feature index of each row
    unit: Float[torch.Tensor, "n d_in"]  # rows normalised to unit length (zero rows stay zero)

    @property
    def chunks(self) -> int:
        return math.ceil(self.unit.shape[0] / CHUNK)


def load_decoder(source: Source) -> Decoder | None:
    """Decoder rows of a source, normalised; None when the catalog holds no weights for it."""
    weights = Path(source.local_path) / "sae_weights.safetensors" if source.local_path else None
    matrix: torch.Tensor | None = None
    indices: np.ndarray | None = None
    if weights is not None and weights.is_file():
        from safetensors.torch import load_file  # noqa: PLC0415

        tensors = load_file(str(weights))
        if "W_dec" in tensors:
            matrix = tensors["W_dec"].float()
            indices = np.arange(matrix.shape[0])
    if matrix is None:
        rows = list(Feature.objects.filter(source=source, has_vector=True).exclude(vector=[])
                    .order_by("index").values_list("index", "vector"))
        if rows and len({len(v) for _, v in rows}) == 1:
            indices = np.array([i for i, _ in rows])
            matrix = torch.tensor([v for _, v in rows], dtype=torch.float32)
    if matrix is None or indices is None:
        return None
    norms = matrix.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return Decoder(source=source, indices=indices, unit=matrix / norms)


@dataclass
class SimilarPlan:
    """What one run compares: `wanted` sources get their rows (re)computed against their `partners`."""

    model_id: str
    decoders: list[Decoder]
    wanted: list[Decoder]
    skipped: list[str] = field(default_factory=list)  # sources of the model without decoder weights

    def partners(self, a: Decoder) -> list[Decoder]:
        """The other sources with decoders of a's width (d_model), in catalog order."""
        return [b for b in self.decoders if b is not a and b.unit.shape[1] == a.unit.shape[1]]

    def steps(self, a: Decoder) -> int:
        """Progress units of one source: a chunk of its rows against one partner."""
        return a.chunks * len(self.partners(a))

    @property
    def total(self) -> int:
        return sum(self.steps(a) for a in self.wanted)


def plan_similar(*, model_id: str, source_names: list[str] | None = None) -> SimilarPlan:
    """Load the decoders of `model_id`'s sources; the sources to compute are those named (default: every
    source with weights) that have a partner of the same width. NothingToCompare says why there is none."""
    sources = list(Source.objects.filter(model_id=model_id).order_by("layer", "name"))
    if not sources:
        raise NothingToCompare(f"{model_id} has no sources in the catalog")
    unknown = sorted(set(source_names or []) - {s.name for s in sources})
    if unknown:
        raise NothingToCompare(f"{model_id} has no source named {', '.join(unknown)}")
    decoders: list[Decoder] = []
    skipped: list[str] = []
    for source in sources:
        decoder = load_decoder(source)
        if decoder is None:
            skipped.append(source.name)
        else:
            decoders.append(decoder)
    plan = SimilarPlan(model_id=model_id, decoders=decoders, wanted=[], skipped=skipped)
    names = set(source_names or [d.source.name for d in decoders])
    plan.wanted = [d for d in decoders if d.source.name in names and plan.partners(d)]
    if not plan.wanted:
        raise NothingToCompare(_why_nothing(plan, source_names))
    return plan


def _why_nothing(plan: SimilarPlan, source_names: list[str] | None) -> str:
    without = (f" Without decoder weights (no sae_weights.safetensors with W_dec in the source's local "
               f"folder, no stored feature vectors): {', '.join(plan.skipped)}." if plan.skipped else "")
    if len(plan.decoders) < 2:
        return (f"{plan.model_id} has {len(plan.decoders)} source(s) with decoder weights; comparing needs "
                f"at least 2.{without}")
    named = f" among {', '.join(sorted(source_names))}" if source_names else ""
    return (f"no source{named} of {plan.model_id} has decoder weights and another source of the same "
            f"width (d_model) to compare with.{without}")


def _pairs(a: Decoder, b: Decoder, top_k: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first row of a, top-k positions in b, their cosines) per chunk of a's rows."""
    k = min(top_k, b.unit.shape[0])
    for lo in range(0, a.unit.shape[0], CHUNK):
        sims = a.unit[lo:lo + CHUNK] @ b.unit.T
        values, positions = torch.topk(sims, k, dim=1)
        yield lo, positions.numpy(), values.numpy()


def _upsert(rows: list[CrossSourceSimilarity]) -> None:
    for start in range(0, len(rows), WRITE_BATCH):
        CrossSourceSimilarity.objects.bulk_create(
            rows[start:start + WRITE_BATCH], update_conflicts=True,
            unique_fields=["feature", "other_source"], update_fields=["indices", "values", "computed_at"])


def compute_source(plan: SimilarPlan, a: Decoder, *, top_k: int,
                   on_chunk: Callable[[str], None] | None = None) -> dict[str, Any]:
    """(Re)compute source a's rows against each partner, one committed chunk at a time (`on_chunk` is called
    after each, with a message), then delete a's rows against sources it is no longer compared with."""
    ids = dict(Feature.objects.filter(source=a.source).values_list("index", "id"))
    partners = plan.partners(a)
    written = 0
    for b in partners:
        for lo, positions, values in _pairs(a, b, top_k):
            rows = [CrossSourceSimilarity(feature_id=feature_id, other_source=b.source,
                                          indices=[int(b.indices[p]) for p in positions[offset]],
                                          values=[round(float(v), 5) for v in values[offset]])
                    for offset in range(positions.shape[0])
                    if (feature_id := ids.get(int(a.indices[lo + offset]))) is not None]
            _upsert(rows)
            written += len(rows)
            if on_chunk is not None:
                hi = min(lo + CHUNK, a.unit.shape[0])
                on_chunk(f"{a.source.name} against {b.source.name}: features {lo}-{hi - 1} of "
                         f"{a.unit.shape[0]}")
    CrossSourceSimilarity.objects.filter(feature__source=a.source).exclude(
        other_source__in=[b.source for b in partners]).delete()
    return {"pairs": [f"{a.source.name}->{b.source.name}" for b in partners], "rows": written}


def similar_for_feature(feature: Feature, per_source: int = 5) -> list[dict[str, Any]]:
    """Stored cross-source neighbours of a feature, grouped by the other source, with their explanations."""
    from features.selectors import top_explanations_by_index  # noqa: PLC0415

    out = []
    for row in (CrossSourceSimilarity.objects.filter(feature=feature).select_related("other_source")
                .order_by("other_source__layer", "other_source__name")):
        other = row.other_source
        pairs = list(zip(row.indices, row.values, strict=False))[:per_source]
        names = top_explanations_by_index(other.model_id, other.name, [i for i, _ in pairs])
        out.append({"source": other, "items": [
            {"index": i, "value": v, "explanation": names.get(i, ""),
             "url": f"/{other.model_id}/{other.name}/{i}"} for i, v in pairs]})
    return out
