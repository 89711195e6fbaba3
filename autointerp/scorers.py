"""Scorers: how well an explanation predicts where a feature fires.

- `eleuther_recall` (detection) and `eleuther_fuzz` (fuzzing): delphi's DetectionScorer / FuzzingScorer
  (batches of 5, no logprobs); the score is the balanced accuracy over the examples the LLM classified.
  Examples whose call failed or whose answer could not be parsed are dropped (delphi marks them None);
  if none is left, or a final provider error occurred (bad / exhausted key), scoring fails with the
  reason instead of returning a silent low score (Neuronpedia issue #77).
- `eleuther_embedding`: ROC-AUC of the cosine similarity between the explanation and each example
  (local all-MiniLM-L6-v2) separating activating from non-activating examples. Not delphi's
  EmbeddingScorer: that one embeds whole examples behind an "Instruct: Retrieve sentences..." query
  prefix written for instruction-tuned embedders (MiniLM is not one) and leaves the AUC to the caller;
  here the windows around each held-out example's peak are embedded (issue 16: scored on the examples an
  explainer saw, the score rewards echoing them), the same computation the offline explainer ranks its
  candidates with (autointerp/offline.py WindowScorer).

The explainer `eleuther_acts_top20` and the scorers `eleuther_recall` / `eleuther_fuzz` are delphi's own
(DefaultExplainer, DetectionScorer, FuzzingScorer, with its prompts), over any OpenAI-compatible endpoint;
tests/autointerp pins the prompts they send.

Pure compute over FeatureEvidence-like data; services store the outcome on ExplanationScore.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from autointerp.examples import Example
from autointerp.explainers import activating_example, as_delphi_client, import_delphi
from autointerp.llm import ChatBackend, ProviderError, UnparseableOutput

DETECTION = "eleuther_recall"
FUZZ = "eleuther_fuzz"
EMBEDDING = "eleuther_embedding"
RECALL_ALT = "recall_alt"
SCORE_TYPES = {
    RECALL_ALT: "Recall (Neuronpedia): balanced accuracy of a yes/no answer per text, one call each",
    DETECTION: "Detection (delphi): balanced accuracy of yes/no 'does this text match?'",
    FUZZ: "Fuzzing (delphi): balanced accuracy of 'are the highlighted tokens the right ones?'",
    EMBEDDING: "Embedding: ROC-AUC of explanation/example similarity (all-MiniLM-L6-v2)",
}
LLM_SCORE_TYPES = (DETECTION, FUZZ, RECALL_ALT)
RECALL_SYSTEM = (
    "You check explanations of a language-model feature. Given the explanation and one text, answer "
    "'yes' if the text contains something the explanation describes, otherwise 'no'. Answer with one word."
)


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
    """HELD-OUT activating examples of the feature (never shown to an explainer) and non-activating
    corpus text (windows of the feature's own example sequences where it is exactly zero)."""

    activating: tuple[Example, ...]
    non_activating: tuple[Example, ...]


@dataclass(frozen=True)
class ScoreOutcome:
    value: float
    details: dict[str, Any] = field(default_factory=dict)


def _zero_window_examples(texts: list[str]) -> tuple[Example, ...]:
    return tuple(Example((t,), (0.0,)) for t in texts)


def scoring_set_for_feature(
    feature: Any, *, n_activating: int = 20, n_non_activating: int = 20, seed: int = 0
) -> ScoringSet:
    """Held-out examples (odd ranks of the top group and of the quantile bins) and zero-valued windows
    of the feature's own sequences; topped up with other features' examples of the same source only
    when the feature's sequences have too little zero text."""
    from autointerp.offline import non_activating_windows, split_for_feature  # noqa: PLC0415
    from features.models import Activation  # noqa: PLC0415

    split = split_for_feature(feature)
    activating = split.held_out[:n_activating]
    texts = non_activating_windows(split.held_out + split.seen)[:n_non_activating]
    if len(texts) < n_non_activating:
        seen = {ex.text for ex in split.held_out + split.seen} | set(texts)
        pool = list(
            Activation.objects.filter(feature__source_id=feature.source_id)
            .exclude(feature=feature)
            .order_by("-max_value")
            .only("tokens")[: n_non_activating * 5]
        )
        random.Random(seed).shuffle(pool)
        for row in pool:
            text = "".join(row.tokens[:13]).strip()
            if text and text not in seen and len(texts) < n_non_activating:
                seen.add(text)
                texts.append(text)
    return ScoringSet(activating=tuple(activating), non_activating=_zero_window_examples(texts))


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
    """ROC-AUC of similarity(explanation, text) separating held-out activating windows (the tokens
    around each example's peak) from non-activating text (local all-MiniLM-L6-v2)."""
    from autointerp.offline import WindowScorer, activating_windows  # noqa: PLC0415

    if not data.activating or not data.non_activating:
        raise ScoringFailed(
            "embedding scoring needs held-out activating examples and non-activating text "
            f"({len(data.activating)} and {len(data.non_activating)})"
        )
    pos = activating_windows(data.activating)
    neg = [ex.text.strip() for ex in data.non_activating if ex.text.strip()]
    try:
        details = WindowScorer(pos, neg, model=model).details(explanation)
    except ValueError as exc:
        raise ScoringFailed(str(exc)) from None
    details["explanation_text"] = explanation
    return ScoreOutcome(value=details.pop("value"), details=details)


def score_recall_alt(explanation: str, data: ScoringSet, backend: ChatBackend) -> ScoreOutcome:
    """One yes/no call per held-out activating text and per non-activating text; balanced accuracy.
    A final provider error or no parseable answer fails the score with the reason."""
    from autointerp.offline import activating_windows  # noqa: PLC0415

    if not data.activating or not data.non_activating:
        raise ScoringFailed("recall scoring needs activating and non-activating examples")
    texts = [(t, True) for t in activating_windows(data.activating)]
    texts += [(ex.text.strip(), False) for ex in data.non_activating if ex.text.strip()]
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for text, active in texts:
        messages = [{"role": "system", "content": RECALL_SYSTEM},
                    {"role": "user",
                     "content": f"Explanation: {explanation}\nText: {text}\nAnswer (yes/no):"}]
        try:
            answer = backend.complete(messages, max_tokens=3, temperature=0.0).strip().lower()
        except ProviderError as exc:
            if not exc.transient:
                raise ScoringFailed(exc.reason, provider_final=True) from None
            errors.append(exc.reason)
            continue
        word = answer.split()[0].strip(".,!'\"") if answer.split() else ""
        prediction = True if word == "yes" else False if word == "no" else None
        rows.append({"text": text, "activating": active, "prediction": prediction, "answer": answer[:20]})
    valid = [r for r in rows if r["prediction"] is not None]
    details: dict[str, Any] = {"breakdown": rows, "n_examples": len(rows),
                               "n_dropped": len(rows) - len(valid),
                               "errors": errors[:10], "metric": "balanced_accuracy", "method": RECALL_ALT,
                               "explanation_text": explanation}
    if not any(r["activating"] for r in valid) or all(r["activating"] for r in valid):
        raise ScoringFailed("no usable yes/no answers for both classes (expected 'yes' or 'no')",
                            details=details)
    value, tpr, tnr = balanced_accuracy(valid)
    details.update(tpr=tpr, tnr=tnr)
    return ScoreOutcome(value=value, details=details)


def score(score_type: str, explanation: str, data: ScoringSet, backend: ChatBackend | None) -> ScoreOutcome:
    if score_type == EMBEDDING:
        return score_embedding(explanation, data)
    if score_type in LLM_SCORE_TYPES:
        if backend is None:
            raise ValueError(f"{score_type} needs an LLM backend")
        if score_type == RECALL_ALT:
            return score_recall_alt(explanation, data, backend)
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
