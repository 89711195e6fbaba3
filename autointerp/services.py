"""Writes of autointerp: explanations, scores and embeddings (batch jobs over many features: batch.py).

Every function is safe to re-run: an explanation of a feature by (type, model) is reused rather than
duplicated, and a score row is unique per (explanation, type, model) and a FAILED one is retried in place.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings as django_settings  # `settings` names explainer settings here
from django.db import transaction
from django.db.models import QuerySet

from autointerp.embedders import get_embedder
from autointerp.explainers import (
    EXPLAINER_DESCRIPTIONS,
    EXPLAINERS,
    OFFLINE_EXPLAINERS,
    ExplainerSettings,
    evidence_for_feature,
    explain,
)
from autointerp.llm import LOCAL_MODEL, LOCAL_MODEL_DISPLAY, ChatBackend, ProviderError, get_backend
from autointerp.offline import SCORER_VERSION
from autointerp.scorers import EMBEDDING, SCORE_TYPES, ScoringFailed, score, scoring_set_for_feature
from features.embedders_registry import DEFAULT_EMBEDDER
from features.models import (
    Explanation,
    ExplanationModel,
    ExplanationScore,
    ExplanationScoreModel,
    ExplanationScoreType,
    ExplanationType,
    Feature,
    ScoreStatus,
)

logger = logging.getLogger(__name__)
HEADLINE_SCORE = EMBEDDING  # the score shown with every explanation: computed offline, on held-out examples


def ensure_catalog(*, explainer_type: str, model: str) -> tuple[ExplanationType, ExplanationModel]:
    etype, _ = ExplanationType.objects.get_or_create(
        name=explainer_type,
        defaults={
            "display_name": EXPLAINER_DESCRIPTIONS.get(explainer_type, ""),
            "creator_name": "autointerp",
        },
    )
    display = LOCAL_MODEL_DISPLAY if model == LOCAL_MODEL else model
    emodel, _ = ExplanationModel.objects.get_or_create(name=model, defaults={"display_name": display})
    return etype, emodel


def existing_explanation(*, feature_id: int, explainer_type: str, model: str) -> Explanation | None:
    return (
        Explanation.objects.defer("embedding")
        .filter(feature_id=feature_id, type_id=explainer_type, explanation_model_id=model)
        .order_by("id")
        .first()
    )


def store_explanation(
    *,
    feature_id: int,
    text: str,
    explainer_type: str,
    model: str,
    settings: dict[str, Any],
    user: Any = None,
    embedding: Any = None,
    embedder: str = "",
    method: str = "llm",
) -> Explanation:
    """Create the explanation unless (feature, type, model) already has one, which is returned."""
    etype, emodel = ensure_catalog(explainer_type=explainer_type, model=model)
    with transaction.atomic():
        Feature.objects.select_for_update().filter(pk=feature_id).first()  # serialise per feature
        found = existing_explanation(feature_id=feature_id, explainer_type=explainer_type, model=model)
        if found is not None:
            return found
        return Explanation.objects.create(
            feature_id=feature_id,
            description=text,
            type=etype,
            explanation_model=emodel,
            explainer_settings=settings,
            triggered_by=user if getattr(user, "pk", None) else None,
            embedding=embedding,
            embedder=embedder if embedding is not None else "",
            method=method,
        )


def generate_explanation(
    *,
    feature: Feature,
    explainer_type: str,
    model: str,
    user: Any = None,
    backend: ChatBackend | None = None,
    embed: bool = True,
    settings: ExplainerSettings | None = None,
    score: bool = True,
) -> Explanation:
    """Explain one feature with (type, model) and store it, with its embedding; returns the existing
    explanation when the feature already has one from that explainer. Raises ProviderError,
    UnparseableOutput or ValueError with a readable reason."""
    found = existing_explanation(feature_id=feature.pk, explainer_type=explainer_type, model=model)
    if found is not None:
        return found
    if explainer_type not in EXPLAINERS:
        raise ValueError(f"unknown explainer {explainer_type!r}; known: {', '.join(EXPLAINERS)}")
    if explainer_type in OFFLINE_EXPLAINERS and model != LOCAL_MODEL:
        raise ValueError(f"{explainer_type} runs offline with {LOCAL_MODEL} only, not {model!r}")
    evidence = evidence_for_feature(feature)
    if not evidence.examples:
        raise ValueError(f"feature {feature.pk} has no activating examples to explain")
    settings = settings or ExplainerSettings.for_model(explainer_type, model)
    backend = backend or get_backend(model=model, user=user)
    result = explain(evidence, explainer_type=explainer_type, backend=backend, settings=settings)
    vector = get_embedder(DEFAULT_EMBEDDER).embed([result.text])[0] if embed else None
    explanation = store_explanation(
        feature_id=feature.pk,
        text=result.text,
        explainer_type=explainer_type,
        model=model,
        user=user,
        settings={**settings.as_json(), "backend": repr(backend), **({"offline": result.details}
                                                                      if result.details else {})},
        embedding=vector,
        embedder=DEFAULT_EMBEDDER,
        method=result.method,
    )
    if score:
        score_explanation(explanation=explanation, score_type=HEADLINE_SCORE, user=user)
        explanation.refresh_from_db(fields=["score", "score_type_name"])
    return explanation


def embed_explanations(
    *,
    explanations: QuerySet[Explanation],
    embedder: str = DEFAULT_EMBEDDER,
    user: Any = None,
    batch_size: int = 256,
    overwrite: bool = False,
) -> int:
    """Embed descriptions with `embedder`, storing its name with each vector; returns how many."""
    model = get_embedder(embedder, user=user)
    queryset = explanations if overwrite else explanations.exclude(embedder=embedder)
    ids = list(queryset.order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), batch_size):
        rows = list(
            Explanation.objects.filter(id__in=ids[start : start + batch_size]).only("id", "description")
        )
        vectors = model.embed([row.description for row in rows])
        for row, vector in zip(rows, vectors, strict=True):
            row.embedding, row.embedder = vector, embedder
        Explanation.objects.bulk_update(rows, ["embedding", "embedder"])
    return len(ids)


def _score_row(
    *, explanation: Explanation, score_type: str, scorer_model: str | None, user: Any
) -> ExplanationScore | None:
    """Claim the (explanation, type, model) row for a run: new or FAILED/PENDING -> RUNNING. None if a
    DONE or RUNNING row exists (nothing to do)."""
    stype, _ = ExplanationScoreType.objects.get_or_create(
        name=score_type,
        defaults={
            "display_name": SCORE_TYPES.get(score_type, ""),
            "description": SCORE_TYPES.get(score_type, ""),
        },
    )
    smodel = None
    if scorer_model:
        smodel, _ = ExplanationScoreModel.objects.get_or_create(name=scorer_model)
    with transaction.atomic():
        row, _ = ExplanationScore.objects.select_for_update().get_or_create(
            explanation=explanation,
            score_type=stype,
            score_model=smodel,
            defaults={
                "status": ScoreStatus.PENDING,
                "initiated_by": user if getattr(user, "pk", None) else None,
            },
        )
        fresh = row.status == ScoreStatus.DONE and not is_stale(row, explanation)
        if row.status == ScoreStatus.RUNNING or fresh:
            return None
        row.status, row.error, row.value = ScoreStatus.RUNNING, "", None
        row.save(update_fields=["status", "error", "value", "updated_at"])
    return row


def is_stale(row: ExplanationScore, explanation: Explanation) -> bool:
    """A DONE score of another text (the explanation was edited) or by an older scorer: recompute it."""
    details = row.json_details or {}
    if "explanation_text" in details and details["explanation_text"] != explanation.description:
        return True
    return row.score_type_id == EMBEDDING and details.get("scorer_version") != SCORER_VERSION


def sync_headline(explanation_id: int) -> None:
    """Copy the headline score (DONE value, else none) onto the explanation row."""
    row = ExplanationScore.objects.filter(explanation_id=explanation_id, score_type_id=HEADLINE_SCORE,
                                          status=ScoreStatus.DONE).order_by("-updated_at").first()
    Explanation.objects.filter(pk=explanation_id).update(
        score=None if row is None else row.value, score_type_name=HEADLINE_SCORE if row else "")


def score_explanation(
    *,
    explanation: Explanation,
    score_type: str,
    scorer_model: str | None = None,
    user: Any = None,
    backend: ChatBackend | None = None,
) -> ExplanationScore:
    """Score and store DONE (value + per-example breakdown) or FAILED (reason). A FAILED score is retried
    on the same row; a DONE or RUNNING one is returned unchanged."""
    if score_type not in SCORE_TYPES:
        raise ValueError(f"unknown score type {score_type!r}; known: {', '.join(SCORE_TYPES)}")
    model_name = None if score_type == "eleuther_embedding" else (scorer_model or default_scorer_model())
    row = _score_row(explanation=explanation, score_type=score_type, scorer_model=model_name, user=user)
    if row is None:
        return ExplanationScore.objects.get(
            explanation=explanation, score_type_id=score_type, score_model_id=model_name
        )
    try:
        if model_name and backend is None:
            backend = get_backend(model=model_name, user=user)
        data = scoring_set_for_feature(explanation.feature)
        outcome = score(score_type, explanation.description, data, backend)
    except ScoringFailed as exc:
        return _fail_score(row, exc.reason, exc.details)
    except ProviderError as exc:
        return _fail_score(row, exc.reason, {})
    except Exception as exc:  # a bug or bad data: still explicit, never a silent value
        logger.exception("scoring explanation %s failed", explanation.pk)
        return _fail_score(row, f"{type(exc).__name__}: {exc}", {})
    row.status, row.value, row.json_details, row.error = ScoreStatus.DONE, outcome.value, outcome.details, ""
    row.save(update_fields=["status", "value", "json_details", "error", "updated_at"])
    if row.score_type_id == HEADLINE_SCORE:
        sync_headline(row.explanation_id)
    return row


def store_score(
    *,
    explanation: Explanation,
    score_type: str,
    scorer_model: str | None,
    user: Any = None,
    outcome: Any = None,
    failure: str = "",
    details: dict[str, Any] | None = None,
) -> ExplanationScore:
    """Upsert the (explanation, type, model) score as DONE with `outcome` or FAILED with `failure`."""
    model_name = None if score_type == "eleuther_embedding" else scorer_model
    row = _score_row(explanation=explanation, score_type=score_type, scorer_model=model_name, user=user)
    if row is None:
        return ExplanationScore.objects.get(
            explanation=explanation, score_type_id=score_type, score_model_id=model_name
        )
    if outcome is None:
        return _fail_score(row, failure or "unknown failure", details or {})
    row.status, row.value, row.json_details, row.error = ScoreStatus.DONE, outcome.value, outcome.details, ""
    row.save(update_fields=["status", "value", "json_details", "error", "updated_at"])
    if row.score_type_id == HEADLINE_SCORE:
        sync_headline(row.explanation_id)
    return row


def _fail_score(row: ExplanationScore, reason: str, details: dict[str, Any]) -> ExplanationScore:
    row.status, row.value, row.error, row.json_details = ScoreStatus.FAILED, None, reason[:2000], details
    row.save(update_fields=["status", "value", "error", "json_details", "updated_at"])
    if row.score_type_id == HEADLINE_SCORE:
        sync_headline(row.explanation_id)
    return row


def default_scorer_model() -> str:
    return django_settings.NP_SCORER_MODEL or django_settings.NP_EXPLAINER_MODEL or "gpt-4o-mini"
