"""Cross-source similar features (issue 18): decoder cosine similarity of each feature against the features
of every other source of the same model (same d_model), top-k stored per (feature, other source).

Decoder directions come from what the catalog holds: an SAE-Lens folder (`local_path` with
`sae_weights.safetensors`, key `W_dec`), else the features' stored vectors (vector sources). Sources with
neither (most imports: Neuronpedia exports carry no weights) are skipped and reported. The work is a chunked
matrix product on the CPU (float32): d_sae_a × d_sae_b × d_model multiply-adds per pair of sources.
Safe to run twice: rows are upserted on (feature, other source).
"""

# ruff: noqa: F722  (jaxtyping shape strings)
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from django.db import transaction
from jaxtyping import Float

from features.models import CrossSourceSimilarity, Feature, Source

CHUNK = 2048
WRITE_BATCH = 2000


@dataclass
class Decoder:
    source: Source
    indices: np.ndarray  # feature index of each row
    unit: Float[torch.Tensor, "n d_in"]  # rows normalised to unit length (zero rows stay zero)


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


def _pairs(a: Decoder, b: Decoder, top_k: int) -> Any:
    """(row of a, top-k indices in b, their cosines) per chunk of a's rows."""
    k = min(top_k, b.unit.shape[0])
    for lo in range(0, a.unit.shape[0], CHUNK):
        sims = a.unit[lo:lo + CHUNK] @ b.unit.T
        values, positions = torch.topk(sims, k, dim=1)
        yield lo, positions.numpy(), values.numpy()


def compute_cross_source_similar(*, model_id: str, source_names: list[str] | None = None,
                                 top_k: int = 10) -> dict[str, Any]:
    """For each source of `model_id` (or those named) with decoder weights, its features' top-k neighbours
    in every other source of the model with weights of the same width. Returns what was done and skipped."""
    sources = list(Source.objects.filter(model_id=model_id).order_by("layer", "name"))
    decoders: list[Decoder] = []
    skipped: list[str] = []
    for source in sources:
        decoder = load_decoder(source)
        if decoder is None:
            skipped.append(source.name)
        else:
            decoders.append(decoder)
    wanted = set(source_names or [d.source.name for d in decoders])
    written = 0
    pairs = []
    for a in decoders:
        if a.source.name not in wanted:
            continue
        ids = dict(Feature.objects.filter(source=a.source).values_list("index", "id"))
        for b in decoders:
            if b is a or b.unit.shape[1] != a.unit.shape[1]:
                continue
            pairs.append(f"{a.source.name}->{b.source.name}")
            rows = []
            for lo, positions, values in _pairs(a, b, top_k):
                for offset in range(positions.shape[0]):
                    feature_id = ids.get(int(a.indices[lo + offset]))
                    if feature_id is None:
                        continue
                    rows.append(CrossSourceSimilarity(
                        feature_id=feature_id, other_source=b.source,
                        indices=[int(b.indices[p]) for p in positions[offset]],
                        values=[round(float(v), 5) for v in values[offset]]))
            with transaction.atomic():
                for start in range(0, len(rows), WRITE_BATCH):
                    CrossSourceSimilarity.objects.bulk_create(
                        rows[start:start + WRITE_BATCH], update_conflicts=True,
                        unique_fields=["feature", "other_source"],
                        update_fields=["indices", "values", "computed_at"])
            written += len(rows)
    return {"model": model_id, "pairs": pairs, "rows": written, "skipped_without_weights": skipped}


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
