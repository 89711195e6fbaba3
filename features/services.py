"""Writes behind the public API: bring-your-own models, source sets, features and activations; human
explanations; feature lists; steering vectors. Keyword-only, typed, each owning its transaction.

Business-rule failures raise django.core.exceptions.ValidationError (-> 400 JSON) or Http404.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404

from features.models import (
    Activation,
    Explanation,
    ExplanationModel,
    ExplanationType,
    Feature,
    FeatureList,
    ListItem,
    Model,
    Source,
    SourceSet,
    Visibility,
)
from features.signals import human_explanation_created

VECTOR_HOOK_TYPES = {"hook_resid_pre": "resid-pre", "hook_resid_post": "resid-post"}
VECTOR_SOURCE_SET_PREFIX = "neuronpedia"
VECTOR_INDEX_RANGE = (10_000_000, 99_999_999)  # a random 8-digit index, as Neuronpedia does
HUMAN_EXPLANATION_TYPE = "human"
# Neuronpedia leaves `dimension` empty for user models; ours is required, so /api/model/new without a
# `dimension` stores this placeholder and vector uploads to such a model are refused with a hint.
UNKNOWN_DIMENSION = 1


# --- Models and source sets ---------------------------------------------------------------------

def create_model(*, user: Any, model_id: str, layers: int, display_name: str = "", url: str = "",
                 dimension: int) -> Model:
    """A user's own model, UNLISTED (reachable by id, not listed), without live inference."""
    if Model.objects.filter(pk=model_id).exists():
        raise ValidationError("Model already exists")
    try:
        with transaction.atomic():
            return Model.objects.create(
                id=model_id, layers=layers, dimension=dimension, display_name=display_name or model_id,
                display_name_short=display_name or model_id, website=url, owner="custom", creator=user,
                visibility=Visibility.UNLISTED, inference_enabled=False)
    except IntegrityError:  # created concurrently
        raise ValidationError("Model already exists") from None


def create_source_set(*, user: Any, model: Model, name: str, description: str = "",
                      url: str = "") -> SourceSet:
    """A source set owned by `user` plus one source `{layer}-{name}` per layer of the model."""
    try:
        with transaction.atomic():
            source_set = SourceSet.objects.create(
                model=model, name=name, description=description or name, urls=[url] if url else [],
                type="Custom", creator=user, creator_name=user.get_username(),
                visibility=Visibility.UNLISTED, has_dashboards=True, allow_inference_search=False,
                show_umap=False)
            Source.objects.bulk_create([
                Source(model=model, source_set=source_set, name=f"{layer}-{name}", layer=layer,
                       has_dashboards=True, inference_enabled=False, visibility=Visibility.UNLISTED)
                for layer in range(model.layers)])
    except IntegrityError:
        raise ValidationError("Source set name already exists for this model.") from None
    return source_set


# --- Bring-your-own features and activations ---------------------------------------------------

@dataclass(frozen=True)
class ActivationIn:
    tokens: list[str]
    values: list[float]
    quantile_min: float | None = None
    quantile_max: float | None = None
    quantile_fraction: float | None = None


@dataclass(frozen=True)
class ExplanationIn:
    text: str
    method_name: str | None = None
    model_name: str | None = None


@dataclass(frozen=True)
class FeatureIn:
    index: int
    density: float | None = None
    top_logits: list[tuple[str, float]] = field(default_factory=list)
    bottom_logits: list[tuple[str, float]] = field(default_factory=list)
    explanations: list[ExplanationIn] = field(default_factory=list)
    activations: list[ActivationIn] = field(default_factory=list)


def _activation_row(feature: Feature, act: ActivationIn, creator: Any) -> Activation:
    if len(act.tokens) != len(act.values):
        raise ValidationError(f"an activation has {len(act.tokens)} tokens but {len(act.values)} values")
    top = max(range(len(act.values)), key=act.values.__getitem__)
    return Activation(feature=feature, tokens=act.tokens, values=act.values, max_value=act.values[top],
                      max_value_token_index=top, min_value=min(act.values), bin_min=act.quantile_min,
                      bin_max=act.quantile_max, bin_contains=act.quantile_fraction, creator=creator,
                      data_source=f"User {creator.get_username()}")


def _catalog_names(model: type[ExplanationType] | type[ExplanationModel], wanted: set[str],
                   what: str) -> None:
    known = set(model.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    if missing := sorted(wanted - known):
        valid = ", ".join(sorted(model.objects.values_list("pk", flat=True))) or "(none)"
        raise ValidationError(f"Invalid explanation {what} names: {', '.join(missing)}. Valid: {valid}.")


def upload_features(*, user: Any, source: Source, features: list[FeatureIn]) -> int:
    """Create or replace features of the user's own source, with their activations and explanations.

    Re-uploading an index replaces that feature's statistics, activations and explanations, so
    running the same upload twice leaves the same rows. Returns the number of features written."""
    if len({f.index for f in features}) != len(features):
        raise ValidationError("All indexes must be unique.")
    _catalog_names(ExplanationType, {e.method_name for f in features for e in f.explanations
                                     if e.method_name}, "method")
    _catalog_names(ExplanationModel, {e.model_name for f in features for e in f.explanations
                                      if e.model_name}, "model")
    with transaction.atomic():
        rows = {f.index: _feature_row(source=source, user=user, spec=f) for f in features}
        Feature.objects.bulk_create(
            rows.values(), update_conflicts=True, unique_fields=["source", "index"],
            update_fields=["frac_nonzero", "max_act_approx", "pos_str", "pos_values", "neg_str",
                           "neg_values", "creator"])
        saved = {f.index: f for f in Feature.objects.filter(source=source, index__in=list(rows))}
        Activation.objects.filter(feature__in=saved.values()).delete()
        Explanation.objects.filter(feature__in=saved.values()).delete()
        Activation.objects.bulk_create([_activation_row(saved[f.index], a, user)
                                        for f in features for a in f.activations], batch_size=500)
        Explanation.objects.bulk_create([
            Explanation(feature=saved[f.index], description=e.text, type_id=e.method_name,
                        explanation_model_id=e.model_name, author=user)
            for f in features for e in f.explanations], batch_size=500)
    return len(features)


def _feature_row(*, source: Source, user: Any, spec: FeatureIn) -> Feature:
    max_act = max((max(a.values) for a in spec.activations if a.values), default=0.0)
    return Feature(source=source, index=spec.index, frac_nonzero=spec.density, max_act_approx=max_act,
                   pos_str=[t for t, _ in spec.top_logits], pos_values=[v for _, v in spec.top_logits],
                   neg_str=[t for t, _ in spec.bottom_logits],
                   neg_values=[v for _, v in spec.bottom_logits], creator=user)


def upload_activations(*, user: Any, feature: Feature, activations: list[ActivationIn]) -> int:
    """Append activation examples to a feature or vector the user owns; returns how many."""
    with transaction.atomic():
        rows = Activation.objects.bulk_create([_activation_row(feature, a, user) for a in activations],
                                              batch_size=500)
        top = max(r.max_value for r in rows)
        if feature.max_act_approx is None or top > feature.max_act_approx:
            Feature.objects.filter(pk=feature.pk).update(max_act_approx=top)
    return len(rows)


# --- Explanations --------------------------------------------------------------------------------

def create_human_explanation(*, user: Any, feature: Feature, text: str,
                             explanation_model: str | None = None) -> Explanation:
    """A label written (or pasted) by a person. The `human` method is created on first use."""
    if explanation_model and not ExplanationModel.objects.filter(pk=explanation_model).exists():
        raise ValidationError(f"Unknown explanation model: {explanation_model}")
    with transaction.atomic():
        ExplanationType.objects.get_or_create(
            name=HUMAN_EXPLANATION_TYPE, defaults={"display_name": "Human", "description":
                                                   "Written by a person"})
        explanation = Explanation.objects.create(feature=feature, description=text,
                                                 type_id=HUMAN_EXPLANATION_TYPE,
                                                 explanation_model_id=explanation_model or None,
                                                 author=user, triggered_by=user, method="human")
        human_explanation_created.send(sender=Explanation, explanation=explanation)  # autointerp scores it
        return explanation


# --- Lists ---------------------------------------------------------------------------------------

def create_list(*, user: Any, name: str, description: str = "", default_test_text: str = "",
                items: list[tuple[Feature, str]] | None = None) -> FeatureList:
    with transaction.atomic():
        feature_list = FeatureList.objects.create(owner=user, name=name, description=description,
                                                  default_test_text=default_test_text)
        if items:
            add_features_to_list(user=user, feature_list=feature_list, items=items)
    return feature_list


def update_list(*, feature_list: FeatureList, name: str, description: str | None = None,
                default_test_text: str | None = None) -> FeatureList:
    feature_list.name = name
    if description is not None:
        feature_list.description = description
    if default_test_text is not None:
        feature_list.default_test_text = default_test_text
    feature_list.save()
    return feature_list


def delete_list(*, feature_list: FeatureList) -> None:
    feature_list.delete()


def add_features_to_list(*, user: Any, feature_list: FeatureList,
                         items: list[tuple[Feature, str]]) -> list[ListItem]:
    """Add features with per-item notes; features already in the list keep their note (idempotent).
    Returns the list items of the requested features, in request order."""
    with transaction.atomic():
        ListItem.objects.bulk_create(
            [ListItem(feature_list=feature_list, feature=f, description=note, added_by=user)
             for f, note in items], ignore_conflicts=True)
        feature_list.save(update_fields=["updated_at"])
    by_feature = {i.feature_id: i for i in ListItem.objects.select_related("feature__source").filter(
        feature_list=feature_list, feature__in=[f for f, _ in items])}
    return [by_feature[f.pk] for f, _ in items if f.pk in by_feature]


def _list_item(feature_list: FeatureList, feature: Feature) -> ListItem:
    item = (ListItem.objects.select_related("feature__source")
            .filter(feature_list=feature_list, feature=feature).first())
    if item is None:
        raise Http404(f"feature {feature} is not in list {feature_list.pk}")
    return item


def remove_feature_from_list(*, feature_list: FeatureList, feature: Feature) -> ListItem:
    item = _list_item(feature_list, feature)
    with transaction.atomic():
        ListItem.objects.filter(pk=item.pk).delete()
        feature_list.save(update_fields=["updated_at"])
    return item


def edit_list_item(*, feature_list: FeatureList, feature: Feature, description: str) -> ListItem:
    item = _list_item(feature_list, feature)
    item.description = description
    item.save(update_fields=["description"])
    return item


# --- Steering vectors ----------------------------------------------------------------------------

def _vector_source(model: Model, layer: int, hook_type: str) -> Source:
    """The shared synthetic source `{layer}-neuronpedia-resid-pre|post`, created on demand."""
    set_name = f"{VECTOR_SOURCE_SET_PREFIX}-{VECTOR_HOOK_TYPES[hook_type]}"
    source_set, _ = SourceSet.objects.get_or_create(
        model=model, name=set_name,
        defaults={"type": "vector", "description": f"Steering vectors ({hook_type})",
                  "visibility": Visibility.UNLISTED, "has_dashboards": False,
                  "allow_inference_search": False, "show_umap": False})
    source, _ = Source.objects.get_or_create(
        model=model, name=f"{layer}-{set_name}",
        defaults={"source_set": source_set, "layer": layer, "hook_name": f"blocks.{layer}.{hook_type}",
                  "has_dashboards": False, "visibility": Visibility.UNLISTED})
    return source


def create_vector(*, user: Any, model: Model, layer: int, hook_type: str, values: list[float],
                  label: str, default_steer_strength: float) -> Feature:
    """Store a raw steering vector as a Feature (has_vector) with a random unused 8-digit index."""
    if hook_type not in VECTOR_HOOK_TYPES:
        raise ValidationError(f"hookType must be one of {', '.join(VECTOR_HOOK_TYPES)}")
    if not 0 <= layer < model.layers:
        raise ValidationError(f"layerNumber must be between 0 and {model.layers - 1} for {model.id}")
    if model.dimension is None or (model.dimension == UNKNOWN_DIMENSION and model.creator_id is not None):
        raise ValidationError(f"Model {model.id} was created without a dimension; recreate it with "
                              "`dimension` (d_model) to upload vectors")
    if len(values) != model.dimension:
        raise ValidationError(f"Vector dimension {len(values)} does not match model dimension "
                              f"{model.dimension} of {model.id}")
    with transaction.atomic():
        source = _vector_source(model, layer, hook_type)
        for _ in range(10):
            index = random.randint(*VECTOR_INDEX_RANGE)
            try:
                with transaction.atomic():
                    return Feature.objects.create(
                        source=source, index=index, has_vector=True, vector=values, vector_label=label,
                        vector_default_steer_strength=default_steer_strength,
                        hook_name=f"blocks.{layer}.{hook_type}", creator=user)
            except IntegrityError:
                continue
    raise ValidationError("Could not allocate a vector index; try again.")


def delete_vector(*, feature: Feature) -> None:
    feature.delete()
