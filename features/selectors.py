"""Reads for pages and the API. The only place that knows select_related/prefetch_related."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404

from features.models import (
    Activation,
    Explanation,
    ExplanationScore,
    Feature,
    FeatureList,
    ListItem,
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


# --- Public API reads (issue 8) ------------------------------------------------------------------

def _feature_detail_queryset() -> QuerySet[Feature]:
    """The feature page's prefetches (see get_feature), for batches of features."""
    return Feature.objects.select_related("source__model", "source__source_set__release").prefetch_related(
        Prefetch("activations", queryset=Activation.objects.order_by("-max_value", "id")),
        Prefetch("explanations", queryset=Explanation.objects.defer("embedding")
                 .select_related("type", "explanation_model")
                 .prefetch_related(Prefetch("scores", queryset=ExplanationScore.objects
                                            .filter(status="DONE")
                                            .select_related("score_type", "score_model")))
                 .order_by("-score_v2", "-score_v1", "id")),
    )


def features_by_keys(keys: list[tuple[str, str, int]]) -> list[Feature]:
    """Features for (model id, source name, index) keys, with activations and explanations, in one
    query per relation; missing keys are simply absent (callers keep their own order)."""
    if not keys:
        return []
    condition = Q()
    for model_id, source_name, index in keys:
        condition |= Q(source__model_id=model_id, source__name=source_name, index=index)
    return list(_feature_detail_queryset().filter(condition))


def get_feature_row(model_id: str, source_name: str, index: int) -> Feature:
    """One feature with its source, model and source set, without dashboard relations."""
    feature = (Feature.objects.select_related("source__model", "source__source_set")
               .filter(source__model_id=model_id, source__name=source_name, index=index).first())
    if feature is None:
        raise Http404(f"feature {model_id}/{source_name}/{index} not found")
    return feature


def activations_for_feature(feature: Feature) -> QuerySet[Activation]:
    return Activation.objects.filter(feature=feature).order_by("-max_value", "id")


def visible_lists_by_feature(features: list[Feature], user: Any) -> dict[int, list[FeatureList]]:
    """For each feature id, the lists holding it that `user` may see (public ones and the user's own)."""
    visible = Q(feature_list__visibility=Visibility.PUBLIC)
    if user is not None and user.is_authenticated:
        visible |= Q(feature_list__owner=user)
    found: dict[int, list[FeatureList]] = {f.pk: [] for f in features}
    items = (ListItem.objects.filter(visible, feature__in=features).select_related("feature_list")
             .order_by("feature_list__created_at", "feature_list_id"))
    for item in items:
        found[item.feature_id].append(item.feature_list)
    return found


def get_feature_list(list_id: int) -> FeatureList:
    feature_list = (FeatureList.objects.select_related("owner")
                    .prefetch_related(Prefetch("items", queryset=ListItem.objects
                                               .select_related("feature__source")
                                               .order_by("added_at", "id")))
                    .filter(pk=list_id).first())
    if feature_list is None:
        raise Http404(f"list {list_id} not found")
    return feature_list


def feature_lists_owned_by(user: Any) -> QuerySet[FeatureList]:
    return (FeatureList.objects.filter(owner=user).select_related("owner")
            .annotate(item_count=Count("items")).order_by("-updated_at", "-id"))


def vectors_owned_by(user: Any) -> QuerySet[Feature]:
    return (Feature.objects.filter(creator=user, has_vector=True)
            .select_related("source").order_by("-created_at", "-id"))


def get_explanation(explanation_id: str) -> Explanation:
    """By our numeric id or by the id it had in Neuronpedia's export (`external_id`)."""
    lookup = Q(pk=int(explanation_id)) if explanation_id.isdigit() else Q(external_id=explanation_id)
    explanation = (Explanation.objects.defer("embedding")
                   .select_related("feature__source__model", "feature__source__source_set",
                                   "type", "explanation_model")
                   .prefetch_related(Prefetch("scores", queryset=ExplanationScore.objects
                                              .filter(status="DONE")
                                              .select_related("score_type", "score_model")))
                   .filter(lookup).first())
    if explanation is None:
        raise Http404(f"explanation {explanation_id} not found")
    return explanation


def get_source_set(model_id: str, name: str) -> SourceSet:
    source_set = (SourceSet.objects.select_related("model", "release")
                  .prefetch_related(Prefetch("sources", queryset=Source.objects.order_by("layer", "name")))
                  .filter(model_id=model_id, name=name).first())
    if source_set is None:
        raise Http404(f"source set {model_id}/{name} not found")
    return source_set


def get_model(model_id: str) -> Model:
    model = Model.objects.filter(pk=model_id).first()
    if model is None:
        raise Http404(f"model {model_id} not found")
    return model
