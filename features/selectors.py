"""Reads for pages and the API. The only place that knows select_related/prefetch_related."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from features.models import (
    Activation,
    Explanation,
    ExplanationScore,
    Feature,
    Model,
    Source,
    SourceSet,
    Visibility,
)

LISTED = [Visibility.PUBLIC]


def public_models() -> QuerySet[Model]:
    return Model.objects.filter(visibility=Visibility.PUBLIC)


def source_sets_for_model(model: Model) -> QuerySet[SourceSet]:
    return (SourceSet.objects.filter(model=model, visibility__in=LISTED)
            .select_related("release").prefetch_related("sources"))


def get_source(model_id: str, source_name: str) -> Source:
    source = (Source.objects.select_related("model", "source_set")
              .filter(model_id=model_id, name=source_name).first())
    if source is None:
        raise Http404(f"source {model_id}/{source_name} not found")
    return source


def get_feature(model_id: str, source_name: str, index: int) -> Feature:
    """The feature page in three indexed queries: feature (+source, model) by the unique
    (source, index) key, its activations by (feature, -max_value), its explanations with scores."""
    feature = (
        Feature.objects.select_related("source__model", "source__source_set")
        .prefetch_related(
            Prefetch("activations", queryset=Activation.objects.order_by("-max_value")),
            Prefetch("explanations", queryset=Explanation.objects.defer("embedding")
                     .select_related("type", "explanation_model")
                     .prefetch_related(Prefetch("scores", queryset=ExplanationScore.objects
                                                .select_related("score_type", "score_model")))
                     .order_by("-score_v2", "-score_v1", "id")),
        )
        .filter(source__model_id=model_id, source__name=source_name, index=index)
        .first()
    )
    if feature is None:
        raise Http404(f"feature {model_id}/{source_name}/{index} not found")
    return feature


def features_for_source(source: Source) -> QuerySet[Feature]:
    return Feature.objects.filter(source=source).only(
        "id", "index", "max_act_approx", "frac_nonzero", "is_dead", "source_id")
