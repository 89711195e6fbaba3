"""Scorers: how well an explanation predicts where a feature fires.

- `eleuther_recall` (detection) and `eleuther_fuzz` (fuzzing): delphi's DetectionScorer / FuzzingScorer
  (batches of 5, no logprobs); the score is the balanced accuracy over the examples the LLM classified.
  Examples whose call failed or whose answer could not be parsed are dropped (delphi marks them None);
  if none is left, or a final provider error occurred (bad / exhausted key), scoring fails with the
  reason instead of returning a silent low score (Neuronpedia issue #77).
- `eleuther_embedding`: ROC-AUC of the cosine similarity between the explanation and each example
  (local all-MiniLM-L6-v2) separating activating from non-activating examples.

Pure compute over FeatureEvidence-like data; services store the outcome on ExplanationScore.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from autointerp.explainers import Example, activating_example, as_delphi_client, import_delphi
from autointerp.llm import ChatBackend, ProviderError, UnparseableOutput

DETECTION = "eleuther_recall"
FUZZ = "eleuther_fuzz"
EMBEDDING = "eleuther_embedding"
SCORE_TYPES = {
    DETECTION: "Detection (delphi): balanced accuracy of yes/no 'does this text match?'",
    FUZZ: "Fuzzing (delphi): balanced accuracy of 'are the highlighted tokens the right ones?'",
    EMBEDDING: "Embedding: ROC-AUC of explanation/example similarity (all-MiniLM-L6-v2)",
}
LLM_SCORE_TYPES = (DETECTION, FUZZ)


class ScoringFailed(Exception):
    """Scoring produced no usable result; `reason` is stored on the FAILED ExplanationScore."""

    def __init__(
        self,
        reason: str,
        *,
        details: dict[str, Any] | None = None,
        transient: bool = False,
        provider_final: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details or {}
        self.transient = transient
        self.provider_final = provider_final  # a rejected or exhausted key: later calls fail the same way


@dataclass(frozen=True)
class ScoringSet:
    """Activating examples of the feature and non-activating ones (other text)."""

    activating: tuple[Example, ...]
    non_activating: tuple[Example, ...]


@dataclass(frozen=True)
class ScoreOutcome:
    value: float
    details: dict[str, Any] = field(default_factory=dict)


def scoring_set_for_feature(
    feature: Any, *, n_activating: int = 20, n_non_activating: int = 10, seed: int = 0
) -> ScoringSet:
    """Top examples of the feature; non-activating ones are its zero examples, topped up with other
    features' examples from the same source (their values zeroed: text this feature did not top)."""
    from autointerp.explainers import evidence_for_feature  # noqa: PLC0415
    from features.models import Activation  # noqa: PLC0415

    activating = evidence_for_feature(feature, limit=n_activating).examples
    seen = {ex.text for ex in activating}
    negatives: list[Example] = []
    zero_rows = Activation.objects.filter(feature=feature, max_value__lte=0).only("tokens")[:n_non_activating]
    others = (
        Activation.objects.filter(feature__source_id=feature.source_id)
        .exclude(feature=feature)
        .order_by("-max_value")
        .only("tokens")[: n_non_activating * 5]
    )
    pool = list(others)
    random.Random(seed).shuffle(pool)
    for row in [*zero_rows, *pool]:
        text = "".join(row.tokens)
        if text in seen or len(negatives) >= n_non_activating:
            continue
        seen.add(text)
        negatives.append(Example(tuple(row.tokens), tuple(0.0 for _ in row.tokens)))
    return ScoringSet(activating=tuple(activating), non_activating=tuple(negatives))


def _non_activating_example(example: Example) -> Any:
    import torch  # noqa: PLC0415
    from delphi.latents.latents import NonActivatingExample  # noqa: PLC0415

    return NonActivatingExample(
        tokens=torch.zeros(len(example.tokens), dtype=torch.long),
        activations=torch.zeros(len(example.tokens)),
        str_tokens=list(example.tokens),
        distance=-1,
    )


def balanced_accuracy(rows: list[dict[str, Any]]) -> tuple[float, float, float]:
    """(balanced accuracy, true-positive rate, true-negative rate) over rows with a prediction."""
    pos = [r for r in rows if r["activating"]]
    neg = [r for r in rows if not r["activating"]]
    tpr = sum(r["prediction"] is True for r in pos) / len(pos)
    tnr = sum(r["prediction"] is False for r in neg) / len(neg)
    return (tpr + tnr) / 2, tpr, tnr


def _failure_reason(client: Any) -> str:
    final = [e for e in client.errors if isinstance(e, ProviderError) and not e.transient]
    if final:
        return final[0].reason
    if client.errors:
        first = client.errors[0]
        return first.reason if isinstance(first, ProviderError) else f"{type(first).__name__}: {first}"
    sample = client.answers[0][:200] if client.answers else ""
    return f"unparseable LLM output (expected a list of 0/1): {sample!r}"


def score_classifier(
    kind: str,
    explanation: str,
    data: ScoringSet,
    backend: ChatBackend,
    *,
    batch_size: int = 5,
    seed: int = 42,
) -> ScoreOutcome:
    """Detection or fuzzing with delphi's scorer; balanced accuracy; raises ScoringFailed."""
    import_delphi()
    from delphi.latents.latents import Latent, LatentRecord  # noqa: PLC0415
    from delphi.scorers import DetectionScorer, FuzzingScorer  # noqa: PLC0415

    if not data.activating or not data.non_activating:
        raise ScoringFailed("scoring needs both activating and non-activating examples")
    # delphi drops a final partial batch (it expects exactly batch_size answers), so keep whole batches
    n_neg = len(data.non_activating) - (len(data.activating) + len(data.non_activating)) % batch_size
    if n_neg < 1:
        raise ScoringFailed("too few non-activating examples for whole batches")
    record = LatentRecord(latent=Latent("feature", 0), explanation=explanation)
    record.test = [activating_example(ex, quantile=1) for ex in data.activating]
    record.not_active = [_non_activating_example(ex) for ex in data.non_activating[:n_neg]]
    client = as_delphi_client(backend, max_tokens=60)
    scorer_cls = DetectionScorer if kind == DETECTION else FuzzingScorer
    scorer = scorer_cls(client, n_examples_shown=batch_size, log_prob=False, temperature=0.0)
    scorer.rng = random.Random(seed)
    result = asyncio.run(scorer(record))
    rows = [
        {
            "text": "".join(out.str_tokens),
            "activating": bool(out.activating),
            "prediction": out.prediction,
            "correct": out.correct,
            "distance": out.distance,
        }
        for out in result.score
    ]
    valid = [r for r in rows if r["prediction"] is not None]
    details: dict[str, Any] = {
        "breakdown": rows,
        "n_examples": len(rows),
        "n_dropped": len(rows) - len(valid),
        "errors": [str(e)[:300] for e in client.errors][:10],
        "method": kind,
        "batch_size": batch_size,
        "metric": "balanced_accuracy",
    }
    final = [e for e in client.errors if isinstance(e, ProviderError) and not e.transient]
    if final or not valid:
        transient = bool(client.errors) and all(getattr(e, "transient", False) for e in client.errors)
        raise ScoringFailed(
            _failure_reason(client),
            details=details,
            transient=transient and not valid,
            provider_final=bool(final),
        )
    if not any(r["activating"] for r in valid) or all(r["activating"] for r in valid):
        raise ScoringFailed(
            "the LLM answered for one class only: balanced accuracy is undefined", details=details
        )
    value, tpr, tnr = balanced_accuracy(valid)
    details.update(tpr=tpr, tnr=tnr)
    return ScoreOutcome(value=value, details=details)


def score_embedding(explanation: str, data: ScoringSet, *, model: Any = None) -> ScoreOutcome:
    """ROC-AUC of similarity(explanation, example) for activating vs non-activating examples."""
    import_delphi()
    from delphi.latents.latents import Latent, LatentRecord  # noqa: PLC0415
    from delphi.scorers import EmbeddingScorer  # noqa: PLC0415
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    from autointerp.embedders import load_minilm  # noqa: PLC0415

    if not data.activating or not data.non_activating:
        raise ScoringFailed("embedding scoring needs both activating and non-activating examples")
    record = LatentRecord(latent=Latent("feature", 0), explanation=explanation)
    record.test = [activating_example(ex, quantile=1) for ex in data.activating]
    record.not_active = [_non_activating_example(ex) for ex in data.non_activating]
    scorer = EmbeddingScorer(model or load_minilm())
    outputs = asyncio.run(scorer(record)).score
    labels = [out.distance != -1 for out in outputs]  # activating examples carry their quantile
    sims = [float(out.similarity) for out in outputs]
    value = float(roc_auc_score(labels, sims))
    rows = [
        {"text": out.text, "activating": label, "similarity": sim}
        for out, label, sim in zip(outputs, labels, sims, strict=True)
    ]
    rows.sort(key=lambda r: -r["similarity"])
    return ScoreOutcome(
        value=value,
        details={
            "breakdown": rows,
            "metric": "roc_auc",
            "embedder": "all-MiniLM-L6-v2",
            "n_examples": len(rows),
        },
    )


def score(score_type: str, explanation: str, data: ScoringSet, backend: ChatBackend | None) -> ScoreOutcome:
    if score_type == EMBEDDING:
        return score_embedding(explanation, data)
    if score_type in LLM_SCORE_TYPES:
        if backend is None:
            raise ValueError(f"{score_type} needs an LLM backend")
        return score_classifier(score_type, explanation, data, backend)
    raise ValueError(f"unknown score type {score_type!r}; known: {', '.join(SCORE_TYPES)}")


__all__ = [
    "DETECTION",
    "EMBEDDING",
    "FUZZ",
    "ScoreOutcome",
    "ScoringFailed",
    "ScoringSet",
    "UnparseableOutput",
    "score",
    "scoring_set_for_feature",
]
