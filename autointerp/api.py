"""Explanation endpoints of the public API that need autointerp: semantic search (all, sources, model,
release; 20 per page) and generating / scoring explanations with an LLM.

Thin: validate, check visibility, call autointerp.search / autointerp.services, serialize. A failed LLM
call is reported with its reason and stores nothing final: a failed generation can simply be asked
again, and a FAILED score is retried in place (Neuronpedia's issue 77: a failed score blocked re-scoring).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from autointerp import services
from autointerp.explainers import EXPLAINERS
from autointerp.llm import ProviderError, UnparseableOutput
from autointerp.scorers import SCORE_TYPES, scoring_set_for_feature
from autointerp.search import SearchFilters, SearchScope, search_explanations
from features import selectors
from features.api.permissions import HasApiKey, can_view_model, can_view_source, visible_source
from features.api.serializers import ExplanationOutSerializer
from features.models import Explanation, Feature, ScoreStatus, SourceRelease, Visibility
from neuronpedia.api import (
    fields,
    schema,  # noqa: F401  (registers the x-api-key security scheme)
)
from neuronpedia.api.fields import IdField, IndexField, parse_id
from neuronpedia.api.schema import JSON_ONLY, error, errors, validated

EXPLANATIONS = ["explanations"]
PAGE_SIZE = 20
MAX_QUERY_CHARS = 1000
LLM_FAILED = error("The LLM provider failed or answered unusably; `message` has the reason. Retry is "
                   "allowed.")
CONFLICT = error("This score is being computed right now")
DUPLICATE_EXPLANATION = "An auto-interp with this explanation type and model already exists."
DELPHI_BATCH = 5  # the batch_size of autointerp.scorers.score_classifier, which scorers.score() keeps
DUPLICATE_SCORE = "Explanation score using this same method and model already exists"


# --- serializers ---------------------------------------------------------------------------------

class _QuerySerializer(serializers.Serializer):
    query = fields.CharField(min_length=3, max_length=MAX_QUERY_CHARS)
    offset = fields.IntegerField(required=False, default=0, min_value=0, max_value=10_000)
    minScore = fields.FloatField(required=False, allow_null=True, min_value=0, max_value=1,
                                 help_text="only explanations whose score (held-out embedding "
                                           "ROC-AUC) is at least this")
    rank = serializers.ChoiceField(choices=["similarity", "score"], required=False, default="similarity",
                                   help_text="`score`: the 100 nearest explanations ordered by score")


class ExplanationSearchAllInSerializer(_QuerySerializer):
    pass


class ExplanationSearchSourcesInSerializer(_QuerySerializer):
    modelId = fields.CharField(max_length=160)
    layers = serializers.ListField(child=fields.CharField(max_length=160), min_length=1, max_length=256,
                                   help_text="source ids, e.g. [\"6-res-jb\"]")


class ExplanationSearchModelInSerializer(_QuerySerializer):
    modelId = fields.CharField(max_length=160)


class ExplanationSearchReleaseInSerializer(_QuerySerializer):
    releaseName = fields.CharField(max_length=200)


class ExplanationSearchResultSerializer(serializers.Serializer):
    id = serializers.CharField()
    modelId = serializers.CharField()
    layer = serializers.CharField()
    index = serializers.CharField()
    description = serializers.CharField()
    explanationModelName = serializers.CharField(allow_null=True)
    typeName = serializers.CharField(allow_null=True)
    cosine_similarity = serializers.FloatField()
    score = serializers.FloatField(allow_null=True, help_text="headline score (held-out embedding ROC-AUC)")
    scoreTypeName = serializers.CharField(allow_null=True)
    method = serializers.CharField(allow_null=True, help_text="token-analysis, llm, human, or null")
    neuron = serializers.DictField(allow_null=True, help_text="maxActApprox and frac_nonzero of the feature")


class ExplanationSearchOutSerializer(serializers.Serializer):
    request = serializers.DictField()
    results = ExplanationSearchResultSerializer(many=True)
    resultsCount = serializers.IntegerField()
    hasMore = serializers.BooleanField()
    nextOffset = serializers.IntegerField()


@extend_schema_field({"type": "string", "enum": sorted(EXPLAINERS)})
class _ExplainerTypeField(fields.CharField):
    """A free string (an unknown type is answered with Neuronpedia's message), documented as the enum."""


@extend_schema_field({"type": "string", "enum": sorted(SCORE_TYPES)})
class _ScoreTypeField(fields.CharField):
    pass


class ExplanationGenerateInSerializer(serializers.Serializer):
    modelId = fields.CharField(max_length=160)
    layer = fields.CharField(max_length=160, help_text="source id")
    index = IndexField()
    explanationType = _ExplainerTypeField(max_length=100)
    explanationModelName = fields.CharField(max_length=200)


class ExplanationGenerateOutSerializer(serializers.Serializer):
    explanation = ExplanationOutSerializer()


class ExplanationDeleteOutSerializer(serializers.Serializer):
    deleted = serializers.CharField()


class ExplanationScoreInSerializer(serializers.Serializer):
    explanationId = IdField()
    scorerModel = fields.CharField(max_length=200, required=False, allow_null=True, allow_blank=True)
    scorerType = _ScoreTypeField(max_length=100)


class ExplanationScoreDetailSerializer(serializers.Serializer):
    id = serializers.CharField()
    initiatedByUserId = serializers.CharField(allow_null=True)
    value = serializers.FloatField(allow_null=True)
    explanationId = serializers.CharField()
    explanationScoreTypeName = serializers.CharField()
    explanationScoreModelName = serializers.CharField(allow_null=True)
    jsonDetails = serializers.CharField(help_text="the per-example breakdown, as a JSON string")
    status = serializers.CharField()
    error = serializers.CharField()
    createdAt = serializers.DateTimeField()


class ExplanationScoreResultSerializer(serializers.Serializer):
    score = ExplanationScoreDetailSerializer()


class ExplanationScoreFailedSerializer(serializers.Serializer):
    message = serializers.CharField()
    score = ExplanationScoreDetailSerializer()


# --- search --------------------------------------------------------------------------------------

def _search(request: Request, data: dict[str, Any], scope: SearchScope) -> Response:
    try:
        page = search_explanations(data["query"], scope=scope, user=request.user, offset=data["offset"],
                                   limit=PAGE_SIZE, rank=data.get("rank") or "similarity",
                                   filters=SearchFilters(min_score=data.get("minScore")))
    except ValueError as exc:
        return Response({"message": str(exc)}, status=400)
    except ProviderError as exc:
        return Response({"message": f"the embedding provider failed: {exc.reason}"}, status=502)
    keys = {(h.model_id, h.source, h.index) for h in page.hits}
    features: dict[tuple[str, str, int], Feature] = {}
    if keys:
        features = {(f.source.model_id, f.source.name, f.index): f for f in _light_features(list(keys))}
    results = []
    for hit in page.hits:
        feature = features.get((hit.model_id, hit.source, hit.index))
        results.append({
            "id": str(hit.explanation_id), "modelId": hit.model_id, "layer": hit.source,
            "index": str(hit.index),
            "description": hit.description, "explanationModelName": hit.explanation_model or None,
            "typeName": hit.explanation_type or None, "cosine_similarity": hit.similarity,
            "score": hit.score, "scoreTypeName": hit.score_type_name or None, "method": hit.method or None,
            "neuron": None if feature is None else {
                "modelId": hit.model_id, "layer": hit.source, "index": str(hit.index),
                "maxActApprox": feature.max_act_approx, "frac_nonzero": feature.frac_nonzero},
        })
    return Response({"request": dict(request.data), "results": results, "resultsCount": len(results),
                     "hasMore": page.has_more, "nextOffset": data["offset"] + len(results)})


def _light_features(keys: list[tuple[str, str, int]]) -> list[Feature]:
    condition = Q()
    for model_id, source_name, index in keys:
        condition |= Q(source__model_id=model_id, source__name=source_name, index=index)
    return list(Feature.objects.filter(condition).select_related("source").only(
        "id", "index", "max_act_approx", "frac_nonzero", "source__name", "source__model_id"))


def _search_schema(operation_id: str, request_serializer: type[serializers.Serializer], what: str) -> Any:
    return extend_schema(
        tags=EXPLANATIONS, operation_id=operation_id, request=request_serializer,
        responses={200: ExplanationSearchOutSerializer, **errors(),
                   502: error("The embedding provider failed")},
        description=f"Semantic search over the explanations {what}: the query (at least 3 characters) is "
                    f"embedded and explanations are returned nearest first, {PAGE_SIZE} per page (`offset`).")


@_search_schema("explanation_search_all", ExplanationSearchAllInSerializer, "of every model you may see")
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
def explanation_search_all(request: Request) -> Response:
    """Search all explanations."""
    data = validated(ExplanationSearchAllInSerializer, request)
    return _search(request, data, SearchScope())


@_search_schema("explanation_search", ExplanationSearchSourcesInSerializer,
                "of the given sources (`layers`) of a model")
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
def explanation_search(request: Request) -> Response:
    """Search the explanations of some sources."""
    data = validated(ExplanationSearchSourcesInSerializer, request)
    names = sorted(set(data["layers"]))
    for name in names:
        visible_source(request.user, data["modelId"], name)
    return _search(request, data, SearchScope(kind="sources",
                                              sources=tuple((data["modelId"], n) for n in names)))


@_search_schema("explanation_search_model", ExplanationSearchModelInSerializer, "of one model")
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
def explanation_search_model(request: Request) -> Response:
    """Search the explanations of a model."""
    data = validated(ExplanationSearchModelInSerializer, request)
    try:
        model = selectors.get_model(data["modelId"])
    except Http404:
        model = None
    if model is None or not can_view_model(request.user, model):
        raise Http404(f"model {data['modelId']} not found")
    return _search(request, data, SearchScope(kind="model", model_id=model.id))


@_search_schema("explanation_search_release", ExplanationSearchReleaseInSerializer, "of one release")
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
def explanation_search_release(request: Request) -> Response:
    """Search the explanations of a release."""
    data = validated(ExplanationSearchReleaseInSerializer, request)
    release = SourceRelease.objects.filter(pk=data["releaseName"]).first()
    staff = getattr(request.user, "is_staff", False)
    if release is None or (release.visibility == Visibility.PRIVATE and not staff):
        raise Http404(f"release {data['releaseName']} not found")
    return _search(request, data, SearchScope(kind="release", release=release.pk))


# --- generate and score --------------------------------------------------------------------------

def _llm_failure(exc: Exception) -> Response:
    """A provider that is not configured is the caller's setup (400); a failing provider is a 502."""
    if isinstance(exc, ProviderError):
        status = 400 if exc.status is None and not exc.transient else 502
        return Response({"message": exc.reason}, status=status)
    return Response({"message": f"the LLM answer could not be used: {exc}"}, status=502)


@extend_schema(tags=EXPLANATIONS, operation_id="explanation_generate",
               request=ExplanationGenerateInSerializer,
               responses={200: ExplanationGenerateOutSerializer, **errors(auth=True), 502: LLM_FAILED},
               description="Run autointerp on one feature with an explainer type (" + ", ".join(EXPLAINERS)
                           + ") and an LLM (your provider key, the server's key, or the local "
                             "`smollm2-135m-instruct`). One explanation per (feature, type, model): a "
                             "second request is refused with 400; a failed attempt stores nothing and can "
                             "be retried.")
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def explanation_generate(request: Request) -> Response:
    """Auto-interp: generate an explanation."""
    data = validated(ExplanationGenerateInSerializer, request)
    if data["explanationType"] not in EXPLAINERS:
        return Response({"message": f"Unsupported explanation type; supported: {', '.join(EXPLAINERS)}"},
                        status=400)
    try:
        feature = selectors.get_feature_row(data["modelId"], data["layer"], data["index"])
    except Http404:
        feature = None
    if feature is None or not can_view_source(request.user, feature.source):
        raise Http404(f"feature {data['modelId']}/{data['layer']}/{data['index']} not found")
    if services.existing_explanation(feature_id=feature.pk, explainer_type=data["explanationType"],
                                     model=data["explanationModelName"]) is not None:
        return Response({"message": DUPLICATE_EXPLANATION}, status=400)
    try:
        explanation = services.generate_explanation(feature=feature, explainer_type=data["explanationType"],
                                                    model=data["explanationModelName"], user=request.user)
    except (ProviderError, UnparseableOutput) as exc:
        return _llm_failure(exc)
    except ValueError as exc:  # no examples to explain
        return Response({"message": str(exc)}, status=400)
    stored = selectors.get_explanation(str(explanation.pk))
    return Response({"explanation": ExplanationOutSerializer(stored).data})


def _score_out(row: Any) -> dict[str, Any]:
    import json  # noqa: PLC0415

    initiator = None if row.initiated_by_id is None else str(row.initiated_by_id)
    return {"id": str(row.pk), "initiatedByUserId": initiator,
            "value": row.value, "explanationId": str(row.explanation_id),
            "explanationScoreTypeName": row.score_type_id, "explanationScoreModelName": row.score_model_id,
            "jsonDetails": json.dumps(row.json_details or {}), "status": row.status, "error": row.error,
            "createdAt": row.created_at.isoformat()}


@extend_schema(tags=EXPLANATIONS, operation_id="explanation_score", request=ExplanationScoreInSerializer,
               responses={200: ExplanationScoreResultSerializer, **errors(auth=True), 409: CONFLICT,
                          502: ExplanationScoreFailedSerializer},
               description="Score an explanation (" + ", ".join(SCORE_TYPES) + "). A score that already "
                           "exists for this (explanation, type, model) is refused with 400; a FAILED one is "
                           "retried. "
                           "When scoring fails the answer is 502 with the reason (and the FAILED score).")
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def explanation_score(request: Request) -> Response:
    """Auto-interp: score an explanation."""
    data = validated(ExplanationScoreInSerializer, request)
    if data["scorerType"] not in SCORE_TYPES:
        supported = ", ".join(SCORE_TYPES)
        return Response({"message": f"Unsupported explanation score type; supported: {supported}"},
                        status=400)
    explanation = _visible_explanation(request.user, data["explanationId"])
    model_name = None if data["scorerType"] == "eleuther_embedding" else (
        data.get("scorerModel") or services.default_scorer_model())
    existing = explanation.scores.filter(score_type_id=data["scorerType"], score_model_id=model_name).first()
    if existing is not None and existing.status == ScoreStatus.DONE:
        return Response({"message": DUPLICATE_SCORE}, status=400)
    if existing is not None and existing.status == ScoreStatus.RUNNING:
        return Response({"message": "This explanation is being scored with this method and model right now"},
                        status=409)
    if reason := _unscorable(explanation, data["scorerType"]):
        return Response({"message": reason}, status=400)
    row = services.score_explanation(explanation=explanation, score_type=data["scorerType"],
                                     scorer_model=model_name, user=request.user)
    if row.status == ScoreStatus.FAILED:
        return Response({"message": f"Scoring failed: {row.error}", "score": _score_out(row)}, status=502)
    if row.status != ScoreStatus.DONE:
        return Response({"message": "This explanation is being scored with this method and model right now"},
                        status=409)
    return Response({"score": _score_out(row)})


def _unscorable(explanation: Explanation, score_type: str) -> str | None:
    """The feature's examples cannot be scored at all (the caller's data, a 400, not a failed 502)."""
    examples = scoring_set_for_feature(explanation.feature)
    positive, negative = len(examples.activating), len(examples.non_activating)
    if not positive or not negative:
        return ("Scoring needs both activating and non-activating examples: this feature has "
                f"{positive} distinct top examples and {negative} other examples in its source")
    # delphi's scorers (batches of DELPHI_BATCH) drop a final partial batch, negatives first
    delphi = score_type in ("eleuther_recall", "eleuther_fuzz")
    if delphi and negative - (positive + negative) % DELPHI_BATCH < 1:
        return (f"Too few examples to score: {positive} activating and {negative} non-activating examples "
                f"do not fill whole batches of {DELPHI_BATCH}")
    return None


def _visible_explanation(user: Any, explanation_id: str) -> Explanation:
    if explanation_id.isdigit() and parse_id(explanation_id) is None:  # "²", or too large for an id
        raise Http404(f"explanation {explanation_id} not found")
    explanation = selectors.get_explanation(explanation_id)
    if not can_view_source(user, explanation.feature.source):
        raise Http404(f"explanation {explanation_id} not found")
    return explanation


@extend_schema(tags=EXPLANATIONS, operation_id="explanation_delete", request=None,
               responses={200: ExplanationDeleteOutSerializer, **errors(auth=True, owner=True)},
               description="Delete an explanation: its author (or whoever generated it) or an admin.")
@api_view(["POST"])
@permission_classes([HasApiKey])
def explanation_delete(request: Request, explanation_id: str) -> Response:
    """Delete an explanation you wrote or generated (admins: any)."""
    from autointerp.views import can_delete  # noqa: PLC0415

    explanation = _visible_explanation(request.user, explanation_id)
    if not can_delete(request.user, explanation):
        return Response({"message": "Only its author or an admin can delete this explanation"}, status=403)
    explanation.delete()
    return Response({"deleted": explanation_id})
