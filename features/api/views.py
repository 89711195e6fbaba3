"""Neuronpedia-compatible /api endpoints for features, activations, explanations, lists, vectors and
bring-your-own models and source sets. Thin: validate, check visibility/ownership, call a selector or a
service, serialize. Reads are open to anonymous callers where Neuronpedia allows it; writes need an API
key. Private things answer 404 to strangers; things a stranger may see but not change answer 403."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from features import selectors, services
from features.api import serializers as s
from features.api.permissions import (
    HasApiKey,
    can_view_list,
    can_view_model,
    can_view_source,
    can_view_source_set,
    owns_list,
    owns_source,
)
from features.models import Feature, FeatureList, Model
from neuronpedia.api import schema  # noqa: F401  (registers the x-api-key security scheme)
from neuronpedia.api.fields import MAX_INDEX, parse_id
from neuronpedia.api.schema import JSON_ONLY, errors

LISTS, VECTORS, FEATURES = ["lists"], ["vectors"], ["features"]


def _validated(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _visible_feature(user: Any, model_id: str, source_name: str, index: int) -> Feature:
    feature = selectors.get_feature_row(model_id, source_name, index)
    if not can_view_source(user, feature.source):
        raise Http404(f"feature {model_id}/{source_name}/{index} not found")
    return feature


def _present(features: list[Feature], user: Any, max_acts: int | None = None) -> list[Feature]:
    """Attach what the feature serializer reads besides the row: activations (capped) and lists."""
    lists = selectors.visible_lists_by_feature(features, user)
    for feature in features:
        activations = list(feature.activations.all())
        feature.shown_activations = activations if max_acts is None else activations[:max_acts]
        feature.visible_lists = lists[feature.pk]
    return features


def _url(request: Request, path: str) -> str:
    return request.build_absolute_uri(path)


# --- Features ------------------------------------------------------------------------------------

@extend_schema(tags=FEATURES, operation_id="feature_get", responses={200: s.FeatureOutSerializer,
               **errors(body=False)}, parameters=[OpenApiParameter("index", str, OpenApiParameter.PATH,
                                                         description="feature index (digits)")])
@api_view(["GET"])
@permission_classes([AllowAny])
def feature_detail(request: Request, model_id: str, source_name: str, index: str) -> Response:
    """A feature with its model, source, source set, activations (by maxValue desc), explanations
    (with scores) and lists."""
    number = parse_id(index, MAX_INDEX)
    if number is None:
        raise Http404(f"feature {model_id}/{source_name}/{index} not found")
    found = selectors.features_by_keys([(model_id, source_name, number)])
    if not found or not can_view_source(request.user, found[0].source):
        raise Http404(f"feature {model_id}/{source_name}/{index} not found")
    _present(found, request.user)
    return Response(s.FeatureOutSerializer(found[0], context={"request": request}).data)


@extend_schema(tags=FEATURES, operation_id="features_batch",
               request=s.FeatureKeyInSerializer(many=True),
               responses={200: s.FeatureOutSerializer(many=True), **errors(missing=False)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
def features_batch(request: Request) -> Response:
    """Several features at once (at most 128), in request order; missing or hidden ones are left out.
    `maxActsToReturn` of the first item caps the activations per feature."""
    serializer = s.FeatureKeyInSerializer(data=request.data, many=True,
                                          max_length=s.MAX_FEATURES_PER_BATCH_GET)
    serializer.is_valid(raise_exception=True)
    keys = [(k["modelId"], k["layer"], k["index"]) for k in serializer.validated_data]
    by_key = {(f.source.model_id, f.source.name, f.index): f for f in selectors.features_by_keys(keys)
              if can_view_source(request.user, f.source)}
    ordered = [by_key[k] for k in dict.fromkeys(keys) if k in by_key]
    max_acts = serializer.validated_data[0].get("maxActsToReturn") if keys else None
    _present(ordered, request.user, max_acts)
    return Response(s.FeatureOutSerializer(ordered, many=True, context={"request": request}).data)


def _owned_source(user: Any, model_id: str, source_name: str) -> Any:
    try:
        source = selectors.get_source(model_id, source_name)
    except Http404:
        raise Http404(f"Source {model_id}/{source_name} not found.") from None
    if not can_view_source(user, source):
        raise Http404(f"Source {model_id}/{source_name} not found.")
    if not owns_source(user, source):
        raise exceptions.PermissionDenied("You are not the creator of this source set.")
    return source


@extend_schema(tags=FEATURES, operation_id="feature_upload_batch", request=s.FeatureUploadBatchInSerializer,
               responses={200: s.MessageSerializer, **errors(auth=True, owner=True)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def feature_upload_batch(request: Request) -> Response:
    """Upload up to 128 features (activations, logits, density, explanations) into a source of a
    source set you created. Re-uploading an index replaces that feature."""
    data = _validated(s.FeatureUploadBatchInSerializer, request)
    source = _owned_source(request.user, data["modelId"].lower(), data["source"].lower())
    specs = [services.FeatureIn(
        index=f["index"], density=f.get("density"),
        top_logits=[(x["token"], x["value"]) for x in f.get("topLogits") or []],
        bottom_logits=[(x["token"], x["value"]) for x in f.get("bottomLogits") or []],
        explanations=[services.ExplanationIn(e["text"], e["methodName"], e["modelName"])
                      for e in f.get("explanations") or []],
        activations=[_activation_in(a) for a in f.get("activations") or []],
    ) for f in data["features"]]
    count = services.upload_features(user=request.user, source=source, features=specs)
    return Response({"message": f"{count} features created."})


def _activation_in(a: dict[str, Any]) -> services.ActivationIn:
    return services.ActivationIn(tokens=a["tokens"], values=a["values"], quantile_min=a.get("quantileMin"),
                                 quantile_max=a.get("quantileMax"),
                                 quantile_fraction=a.get("quantileFraction"))


# --- Activations ---------------------------------------------------------------------------------

@extend_schema(tags=["activations"], operation_id="activation_upload_batch",
               request=s.ActivationUploadBatchInSerializer,
               responses={200: s.MessageSerializer, **errors(auth=True, owner=True)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def activation_upload_batch(request: Request) -> Response:
    """Add activation examples (tokens + values) to a feature or vector you created."""
    data = _validated(s.ActivationUploadBatchInSerializer, request)
    feature = _visible_feature(request.user, data["modelId"], data["source"], data["index"])
    if feature.creator_id != request.user.pk and not owns_source(request.user, feature.source):
        raise exceptions.PermissionDenied("You can only upload activations to features you created.")
    count = services.upload_activations(user=request.user, feature=feature,
                                        activations=[_activation_in(a) for a in data["activations"]])
    return Response({"message": f"{count} activations created."})


@extend_schema(tags=["activations"], operation_id="activation_get", request=s.FeatureRefInSerializer,
               responses={200: s.ActivationOutSerializer(many=True), **errors()})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
def activation_get(request: Request) -> Response:
    """All stored activations of one feature, by maxValue desc (404 when it has none)."""
    data = _validated(s.FeatureRefInSerializer, request)
    feature = _visible_feature(request.user, data["modelId"], data["source"], data["index"])
    activations = list(selectors.activations_for_feature(feature))
    if not activations:
        raise Http404("Activations not found")
    for activation in activations:
        activation.feature = feature
    return Response(s.ActivationOutSerializer(activations, many=True).data)


# --- Explanations --------------------------------------------------------------------------------

@extend_schema(tags=["explanations"], operation_id="explanation_get",
               responses={200: s.ExplanationOutSerializer, **errors(body=False)})
@api_view(["GET"])
@permission_classes([AllowAny])
def explanation_detail(request: Request, explanation_id: str) -> Response:
    """One explanation with its scores, by id."""
    if explanation_id.isdigit() and parse_id(explanation_id) is None:  # too large for an id
        raise Http404(f"explanation {explanation_id} not found")
    explanation = selectors.get_explanation(explanation_id)
    if not can_view_source(request.user, explanation.feature.source):
        raise Http404(f"explanation {explanation_id} not found")
    return Response(s.ExplanationOutSerializer(explanation).data)


@extend_schema(tags=["explanations"], operation_id="explanation_new", request=s.ExplanationNewInSerializer,
               responses={200: s.ExplanationNewResponseSerializer, **errors(auth=True)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def explanation_new(request: Request) -> Response:
    """Add a human explanation (label) to a feature."""
    data = _validated(s.ExplanationNewInSerializer, request)["feature"]
    feature = _visible_feature(request.user, data["modelId"], data["layer"], data["index"])
    explanation = services.create_human_explanation(
        user=request.user, feature=feature, text=data["explanation"],
        explanation_model=data.get("explanationModel") or None)
    explanation = selectors.get_explanation(str(explanation.pk))
    return Response({"message": "Explanation created.", "url": _url(request, feature.get_absolute_url()),
                     "explanation": s.ExplanationOutSerializer(explanation).data})


# --- Lists ---------------------------------------------------------------------------------------

def _list(user: Any, list_id: str, *, write: bool) -> FeatureList:
    number = parse_id(list_id)
    if number is None:
        raise Http404(f"list {list_id} not found")
    feature_list = selectors.get_feature_list(number)
    if not can_view_list(user, feature_list):
        raise Http404(f"list {list_id} not found")
    if write and not owns_list(user, feature_list):
        raise exceptions.PermissionDenied("Only the owner of this list can change it.")
    return feature_list


def _list_features(user: Any, rows: list[dict[str, Any]], *, skip_missing: bool) -> list[tuple[Feature, str]]:
    keys = [(r["modelId"], r["layer"], r["index"]) for r in rows]
    found = {(f.source.model_id, f.source.name, f.index): f for f in selectors.features_by_keys(keys)
             if can_view_source(user, f.source)}
    if not skip_missing and (missing := [k for k in keys if k not in found]):
        raise Http404("Feature not found: " + ", ".join("/".join(map(str, k)) for k in missing[:5]))
    return [(found[k], r.get("description") or "") for k, r in zip(keys, rows, strict=True) if k in found]


def _list_out(request: Request, feature_list: FeatureList, *, detail: bool = False) -> dict[str, Any]:
    serializer = s.ListDetailOutSerializer if detail else s.ListSummaryOutSerializer
    return serializer(feature_list, context={"request": request}).data


@extend_schema(tags=LISTS, operation_id="list_new", request=s.ListNewInSerializer,
               responses={200: s.ListSummaryOutSerializer, **errors(auth=True, missing=False)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def list_new(request: Request) -> Response:
    """Create an empty list."""
    data = _validated(s.ListNewInSerializer, request)
    feature_list = services.create_list(
        user=request.user, name=data["name"], description=data.get("description") or "",
        default_test_text=data.get("testText") or data.get("defaultTestText") or "")
    return Response(_list_out(request, feature_list))


@extend_schema(tags=LISTS, operation_id="list_new_with_features", request=s.ListNewWithFeaturesInSerializer,
               responses={200: s.ListSummaryOutSerializer, **errors(auth=True, missing=False)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def list_new_with_features(request: Request) -> Response:
    """Create a list holding up to 100 features; features not found are skipped, as Neuronpedia does."""
    data = _validated(s.ListNewWithFeaturesInSerializer, request)
    items = _list_features(request.user, data.get("features") or [], skip_missing=True)
    feature_list = services.create_list(
        user=request.user, name=data["name"], description=data.get("description") or "",
        default_test_text=data.get("testText") or data.get("defaultTestText") or "", items=items)
    return Response(_list_out(request, feature_list))


@extend_schema(tags=LISTS, operation_id="list_get", request=s.ListIdInSerializer,
               responses={200: s.ListDetailOutSerializer, **errors()})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
def list_get(request: Request) -> Response:
    """A list with its features (`neurons`) and their notes."""
    data = _validated(s.ListIdInSerializer, request)
    return Response(_list_out(request, _list(request.user, data["listId"], write=False), detail=True))


@extend_schema(tags=LISTS, operation_id="list_list", request=None,
               responses={200: s.ListSummaryOutSerializer(many=True),
                                          **errors(auth=True, missing=False, body=False)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def list_list(request: Request) -> Response:
    """The caller's lists, most recently updated first."""
    lists = selectors.feature_lists_owned_by(request.user)
    return Response(s.ListSummaryOutSerializer(lists, many=True, context={"request": request}).data)


@extend_schema(tags=LISTS, operation_id="list_update", request=s.ListUpdateInSerializer,
               responses={200: s.ListSummaryOutSerializer, **errors(auth=True, owner=True)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def list_update(request: Request) -> Response:
    """Rename a list or change its description / default test text."""
    data = _validated(s.ListUpdateInSerializer, request)
    feature_list = _list(request.user, data["listId"], write=True)
    services.update_list(feature_list=feature_list, name=data["name"], description=data.get("description"),
                         default_test_text=data.get("defaultTestText"))
    return Response(_list_out(request, feature_list))


@extend_schema(tags=LISTS, operation_id="list_delete", request=s.ListIdInSerializer,
               responses={200: s.MessageSerializer, **errors(auth=True, owner=True)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def list_delete(request: Request) -> Response:
    """Delete a list you own."""
    data = _validated(s.ListIdInSerializer, request)
    services.delete_list(feature_list=_list(request.user, data["listId"], write=True))
    return Response({"message": "List deleted."})


@extend_schema(tags=LISTS, operation_id="list_add_features", request=s.ListAddFeaturesInSerializer,
               responses={200: s.ListItemOutSerializer(many=True), **errors(auth=True, owner=True)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def list_add_features(request: Request) -> Response:
    """Add up to 100 features (with optional notes) to a list you own; all must exist."""
    data = _validated(s.ListAddFeaturesInSerializer, request)
    feature_list = _list(request.user, data["listId"], write=True)
    items = services.add_features_to_list(
        user=request.user, feature_list=feature_list,
        items=_list_features(request.user, data["featuresToAdd"], skip_missing=False))
    return Response(s.ListItemOutSerializer(items, many=True).data)


def _list_item_feature(request: Request, data: dict[str, Any]) -> Feature:
    return _visible_feature(request.user, data["modelId"], data["layer"], data["index"])


@extend_schema(tags=LISTS, operation_id="list_remove", request=s.ListItemRefInSerializer,
               responses={200: s.ListItemOutSerializer, **errors(auth=True, owner=True)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def list_remove(request: Request) -> Response:
    """Remove a feature from a list you own."""
    data = _validated(s.ListItemRefInSerializer, request)
    feature_list = _list(request.user, data["listId"], write=True)
    item = services.remove_feature_from_list(feature_list=feature_list,
                                             feature=_list_item_feature(request, data))
    return Response(s.ListItemOutSerializer(item).data)


@extend_schema(tags=LISTS, operation_id="list_edit_feature", request=s.ListEditFeatureInSerializer,
               responses={200: s.ListItemOutSerializer, **errors(auth=True, owner=True)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def list_edit_feature(request: Request) -> Response:
    """Change the note of a feature in a list you own."""
    data = _validated(s.ListEditFeatureInSerializer, request)
    feature_list = _list(request.user, data["listId"], write=True)
    item = services.edit_list_item(feature_list=feature_list, feature=_list_item_feature(request, data),
                                   description=data["description"])
    return Response(s.ListItemOutSerializer(item).data)


# --- Vectors -------------------------------------------------------------------------------------

@extend_schema(tags=VECTORS, operation_id="vector_new", request=s.VectorNewInSerializer,
               responses={200: s.VectorNewResponseSerializer, **errors(auth=True, missing=False)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def vector_new(request: Request) -> Response:
    """Store a steering vector (length = the model's dimension) at a layer's residual stream."""
    data = _validated(s.VectorNewInSerializer, request)
    model = Model.objects.filter(pk=data["modelId"]).first()
    if model is None or not can_view_model(request.user, model):
        raise exceptions.ValidationError({"modelId": "Model not found"})
    strength = data.get("vectorDefaultSteerStrength")
    feature = services.create_vector(
        user=request.user, model=model, layer=data["layerNumber"], hook_type=data["hookType"],
        values=data["vector"], label=data["vectorLabel"],
        default_steer_strength=10.0 if strength is None else strength)
    return Response({"message": "Success", "url": _url(request, feature.get_absolute_url()),
                     "vector": s.NewVectorOutSerializer(feature).data})


def _vector(request: Request) -> Feature:
    data = _validated(s.FeatureRefInSerializer, request)
    feature = _visible_feature(request.user, data["modelId"], data["source"], data["index"])
    if not feature.has_vector:
        raise Http404(f"{data['modelId']}/{data['source']}/{data['index']} is not a vector")
    return feature


@extend_schema(tags=VECTORS, operation_id="vector_get", request=s.FeatureRefInSerializer,
               responses={200: s.VectorGetResponseSerializer, **errors()})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
def vector_get(request: Request) -> Response:
    """A vector's values, label, hook and default steering strength."""
    return Response({"vector": s.VectorOutSerializer(_vector(request)).data})


@extend_schema(tags=VECTORS, operation_id="vector_delete", request=s.FeatureRefInSerializer,
               responses={200: s.MessageSerializer, **errors(auth=True, owner=True)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def vector_delete(request: Request) -> Response:
    """Delete a vector you created."""
    feature = _vector(request)
    if feature.creator_id != request.user.pk:
        raise exceptions.PermissionDenied("You can only delete vectors you created.")
    services.delete_vector(feature=feature)
    return Response({"message": "Success"})


@extend_schema(tags=VECTORS, operation_id="vector_list_owned", request=None,
               responses={200: s.VectorListResponseSerializer,
                                          **errors(auth=True, missing=False, body=False)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def vector_list_owned(request: Request) -> Response:
    """The caller's vectors, newest first."""
    vectors = selectors.vectors_owned_by(request.user)
    return Response({"vectors": s.VectorOutSerializer(vectors, many=True).data})


# --- Bring your own models and source sets -----------------------------------------------------

@extend_schema(tags=["catalog"], operation_id="model_new", request=s.ModelNewInSerializer,
               responses={200: s.ModelOutSerializer, **errors(auth=True, missing=False)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def model_new(request: Request) -> Response:
    """Create your own (UNLISTED) model. `dimension` (d_model) is needed to upload vectors to it."""
    data = _validated(s.ModelNewInSerializer, request)
    model = services.create_model(user=request.user, model_id=data["id"], layers=data["layers"],
                                  display_name=data.get("displayName") or "", url=data.get("url") or "",
                                  dimension=data.get("dimension") or services.UNKNOWN_DIMENSION)
    return Response(s.ModelOutSerializer(model).data)


@extend_schema(tags=["catalog"], operation_id="source_set_new", request=s.SourceSetNewInSerializer,
               responses={200: s.SourceSetWithSourcesOutSerializer, **errors(auth=True, missing=False)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def source_set_new(request: Request) -> Response:
    """Create a source set you own, with one source `{layer}-{name}` per layer of the model."""
    data = _validated(s.SourceSetNewInSerializer, request)
    model = Model.objects.filter(pk=data["modelId"]).first()
    if model is None or not can_view_model(request.user, model):
        raise exceptions.ValidationError({"modelId": "Model not found"})
    source_set = services.create_source_set(user=request.user, model=model, name=data["name"],
                                            description=data.get("description") or "",
                                            url=data.get("url") or "")
    source_set = selectors.get_source_set(model.id, source_set.name)
    return Response(s.SourceSetWithSourcesOutSerializer(source_set).data)


@extend_schema(tags=["catalog"], operation_id="source_set_get",
               responses={200: s.SourceSetWithSourcesOutSerializer, **errors(body=False)})
@api_view(["GET"])
@permission_classes([AllowAny])
def source_set_detail(request: Request, model_id: str, name: str) -> Response:
    """A source set with its sources."""
    source_set = selectors.get_source_set(model_id, name)
    if not can_view_source_set(request.user, source_set):
        raise Http404(f"source set {model_id}/{name} not found")
    return Response(s.SourceSetWithSourcesOutSerializer(source_set).data)
