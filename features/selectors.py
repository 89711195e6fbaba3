"""Reads for pages and the API. The only place that knows select_related/prefetch_related."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, Prefetch, Q, QuerySet
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

# Best first: a scored explanation by its headline score, then Neuronpedia's own score columns.
EXPLANATION_RANK = (F("score").desc(nulls_last=True), "-score_v2", "-score_v1", "id")


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


DASHBOARD_ACTIVATION_FIELDS = ("id", "feature_id", "tokens", "values", "max_value", "max_value_token_index",
                               "bin_min", "bin_max", "bin_contains",  # what the dashboard shows
                               "dfa_values", "dfa_target_index", "dfa_max_value")  # attention SAEs


def get_feature(model_id: str, source_name: str, index: int) -> Feature:
    """The feature page in three indexed queries: feature (+source, model) by the unique
    (source, index) key, its activations by (feature, -max_value), its explanations with scores."""
    feature = (
        Feature.objects.select_related("source__model", "source__source_set")
        .prefetch_related(
            Prefetch("activations", queryset=Activation.objects.only(*DASHBOARD_ACTIVATION_FIELDS)
                     .order_by("-max_value")),
            Prefetch("explanations", queryset=Explanation.objects.defer("embedding")
                     .select_related("type", "explanation_model")
                     .prefetch_related(Prefetch("scores", queryset=ExplanationScore.objects
                                                .select_related("score_type", "score_model")))
                     .order_by(*EXPLANATION_RANK)),
        )
        .filter(source__model_id=model_id, source__name=source_name, index=index)
        .first()
    )
    if feature is None:
        raise Http404(f"feature {model_id}/{source_name}/{index} not found")
    return feature


def listed_features_filter(source: Source, user: Any) -> Q | None:
    """Which of a source's features a viewer may see listed. A vector source (`{layer}-neuronpedia-resid-*`)
    is shared by everyone's steering vectors, and each vector is unlisted: reachable by its link, listed
    only to its creator (and staff). Every other source lists all its features (None)."""
    if source.source_set.type != "vector" or (user.is_authenticated and user.is_staff):
        return None
    return Q(creator=user) if user.is_authenticated else Q(pk__in=[])


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
                 .order_by(*EXPLANATION_RANK)),
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


# --- Web UI reads (issue 6) ----------------------------------------------------------------------

def home_models() -> QuerySet[Model]:
    """Public models with their listed source sets and those sets' sources (3 queries)."""
    return public_models().prefetch_related(
        Prefetch("source_sets", queryset=SourceSet.objects.filter(visibility__in=LISTED)
                 .select_related("release")
                 .prefetch_related(Prefetch("sources", queryset=Source.objects
                                            .filter(visibility__in=LISTED).order_by("layer", "name")))))


def featured_releases() -> QuerySet[Any]:
    from features.models import SourceRelease  # noqa: PLC0415

    return (SourceRelease.objects.filter(featured=True, visibility__in=LISTED)
            .prefetch_related("source_sets").order_by("name"))


class ExplanationText(str):
    """An explanation's text that also carries its headline score and method (for templates: the text
    renders as before; `.score` / `.method` / `.score_type_name` are shown beside it, as for an
    Explanation row)."""

    score: float | None = None
    method: str = ""
    score_type_name: str = ""

    @classmethod
    def of(cls, text: str, score: float | None, method: str, score_type: str) -> ExplanationText:
        out = cls(text)
        out.score, out.method, out.score_type_name = score, method, score_type
        return out


def top_explanations(feature_ids: list[int]) -> dict[int, str]:
    """Best explanation text per feature id (an ExplanationText), in one DISTINCT ON query."""
    if not feature_ids:
        return {}
    rows = (Explanation.objects.filter(feature_id__in=feature_ids)
            .order_by("feature_id", *EXPLANATION_RANK).distinct("feature_id")
            .values_list("feature_id", "description", "score", "method", "score_type_name"))
    return {fid: ExplanationText.of(d, sc, m, st) for fid, d, sc, m, st in rows}


def top_explanations_by_index(model_id: str, source_name: str, indices: list[int]) -> dict[int, str]:
    """Best explanation per feature index of one source (for cos-sim neighbours), one query."""
    if not indices:
        return {}
    rows = (Explanation.objects.filter(feature__source__model_id=model_id, feature__source__name=source_name,
                                       feature__index__in=indices)
            .order_by("feature_id", *EXPLANATION_RANK).distinct("feature_id")
            .values_list("feature__index", "description", "score", "method", "score_type_name"))
    return {i: ExplanationText.of(d, sc, m, st) for i, d, sc, m, st in rows}


def source_feature_page(source: Source, *, sort: str = "index", after: str = "", before: str = "",
                        size: int = 50, only: Q | None = None) -> tuple[list[Feature], bool, bool]:
    """One keyset page of a source's features: by index (the (source, index) key) or by max activation
    (the (source, max_act_approx DESC) index). `after`/`before` are cursors: `index` or `max:index`.
    `only` narrows the features (a vector source lists only the viewer's own vectors).
    Returns (features, has_more_after, has_more_before)."""
    qs = features_for_source(source) if only is None else features_for_source(source).filter(only)
    backwards = bool(before) and not after
    cursor = before if backwards else after
    if sort == "max":
        qs = qs.filter(max_act_approx__isnull=False)
        order = ["max_act_approx", "index"] if backwards else ["-max_act_approx", "index"]
        if cursor:
            value, _, index = cursor.partition(":")
            try:
                pivot, idx = float(value), int(index)
            except ValueError:
                pivot, idx = None, 0
            if pivot is not None:
                older = Q(max_act_approx__gt=pivot) | Q(max_act_approx=pivot, index__lt=idx)
                newer = Q(max_act_approx__lt=pivot) | Q(max_act_approx=pivot, index__gt=idx)
                qs = qs.filter(older if backwards else newer)
    else:
        order = ["-index"] if backwards else ["index"]
        if cursor.lstrip("-").isdigit():
            qs = qs.filter(index__lt=int(cursor)) if backwards else qs.filter(index__gt=int(cursor))
    rows = list(qs.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
        return rows, True, more
    return rows, more, bool(cursor)


def umap_rows(source: Source, limit: int = 20000) -> list[tuple[int, float, float, int | None, str | None]]:
    """(index, x, y, cluster, best explanation) of a source's features that have UMAP coordinates."""
    from django.db.models import OuterRef, Subquery  # noqa: PLC0415

    best = (Explanation.objects.filter(feature_id=OuterRef("pk"))
            .order_by("-score_v2", "-score_v1", "id").values("description")[:1])
    return list(Feature.objects.filter(source=source, umap_x__isnull=False, umap_y__isnull=False)
                .order_by("index").annotate(best=Subquery(best))
                .values_list("index", "umap_x", "umap_y", "umap_cluster", "best")[:limit])


def evals_for_source(source: Source) -> list[Any]:
    from features.models import Eval  # noqa: PLC0415

    return list(Eval.objects.filter(source=source).order_by("type"))


def random_feature(model_id: str = "", source_name: str = "") -> Feature | None:
    """A random live (not dead) feature of a public source: pick a source, then the first feature at or
    after a random index (an index seek, whatever the table size)."""
    import random  # noqa: PLC0415

    sources = Source.objects.filter(visibility__in=LISTED, model__visibility__in=LISTED)
    if model_id:
        sources = sources.filter(model_id=model_id)
    if source_name:
        sources = sources.filter(name=source_name)
    candidates = list(sources.filter(features__isnull=False).distinct()
                      .values_list("id", "num_features")[:500])
    if not candidates:
        return None
    source_id, width = random.choice(candidates)
    start = random.randrange(width) if width else 0
    base = Feature.objects.filter(source_id=source_id, is_dead=False).select_related("source")
    return (base.filter(index__gte=start).order_by("index").first()
            or base.order_by("index").first()
            or Feature.objects.filter(source_id=source_id).select_related("source").order_by("index").first())


def neighbour_feature(model_id: str, source_name: str, index: int, *, step: int,
                      only: Q | None = None) -> Feature | None:
    """The next (step=1) or previous (step=-1) existing feature of a source, by index."""
    qs = Feature.objects.filter(source__model_id=model_id, source__name=source_name).select_related("source")
    if only is not None:
        qs = qs.filter(only)
    if step > 0:
        return qs.filter(index__gt=index).order_by("index").first()
    return qs.filter(index__lt=index).order_by("-index").first()


def lists_for_user(user: Any) -> QuerySet[FeatureList]:
    """Lists the user owns (for the add-to-list menu)."""
    if user is None or not user.is_authenticated:
        return FeatureList.objects.none()
    return FeatureList.objects.filter(owner=user).order_by("-updated_at", "-id").only("id", "name")


def public_lists(limit: int = 50) -> QuerySet[FeatureList]:
    return (FeatureList.objects.filter(visibility=Visibility.PUBLIC).select_related("owner")
            .annotate(item_count=Count("items")).order_by("-updated_at", "-id")[:limit])


def list_dashboards(feature_list: FeatureList) -> dict[int, dict[str, Any]]:
    """Mini-dashboard data per feature id of a list (top example, best explanation): two queries."""
    ids = [item.feature_id for item in feature_list.items.all()]
    if not ids:
        return {}
    examples = {a.feature_id: a for a in Activation.objects.filter(feature_id__in=ids)
                .order_by("feature_id", "-max_value", "id").distinct("feature_id")}
    explanations = top_explanations(ids)
    return {fid: {"example": examples.get(fid), "explanation": explanations.get(fid, "")} for fid in ids}


def get_list_item_features(feature_list_id: int) -> QuerySet[ListItem]:
    return (ListItem.objects.filter(feature_list_id=feature_list_id)
            .select_related("feature__source").order_by("added_at", "id"))


def top_snippets(feature_ids: list[int], radius: int = 6) -> dict[int, dict[str, Any]]:
    """feature id -> its strongest stored example cut to `radius` tokens around the max: {tokens, values,
    max}. One DISTINCT ON query over the (feature, -max_value) index."""
    from features.models import Activation  # noqa: PLC0415

    if not feature_ids:
        return {}
    rows = (Activation.objects.filter(feature_id__in=feature_ids).order_by("feature_id", "-max_value")
            .distinct("feature_id").values_list("feature_id", "tokens", "values", "max_value",
                                                 "max_value_token_index"))
    out = {}
    for fid, tokens, values, max_value, at in rows:
        lo, hi = max(0, at - radius), at + radius + 1
        out[fid] = {"tokens": list(tokens[lo:hi]), "values": [round(float(v), 3) for v in values[lo:hi]],
                    "max": max_value}
    return out

