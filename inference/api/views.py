"""Live-inference endpoints of the public API: custom text on one feature or vector (activation/new), all
active features of a source (activation/source), search via inference across a source set (search-all)
and top features per token (search-topk-by-token).

Thin: validate, check visibility, call the model's inference worker, join the answer with what the
database stores about the features (density, max activation, explanations), serialize. When no worker
serves the model the answer is a 503 with the worker's message; a broken limit is a 400 naming it; an
unknown model, source or feature a 404. Paths accept a trailing slash because the official SDK sends one
for some of them (`search-all/`).

These views are async (`async_inference_view`): the DRF part (parsing, validation, permissions, the
database) runs in a thread as usual and returns a `Deferred` naming the inference still to do; that
is then awaited on redis.asyncio (inference.client.run_inference_async) without holding a thread,
so requests stuck on a slow or dead worker never starve the pages. A full queue, a dead worker or an
unreachable broker answer 503 + Retry-After at once; a deadline 504.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from features import selectors
from features.api.permissions import can_view_model, can_view_source, can_view_source_set, visible_source
from features.models import Explanation, Feature, Source
from features.services import VECTOR_SOURCE_SET_PREFIX
from inference import client as inference
from inference.api import serializers as s
from neuronpedia.api.schema import JSON_ONLY, error, errors, validated

ACTIVATIONS, SEARCH = ["activations"], ["search via inference"]
NO_WORKER = error("No inference worker serves this model (or source): `message` says how to start one")
INFERENCE_FAILED = error("The inference worker failed or did not answer in time")
MAX_WORKER_RESULTS = 1000  # the worker's default num_results_max
DENSITY_OVERFETCH = 5  # with a density filter, ask the worker for this many times the results wanted


def inference_responses(**kwargs: Any) -> dict[int, Any]:
    return {**errors(**kwargs), 503: NO_WORKER, 504: INFERENCE_FAILED}


def _error_into(response: Response, exc: inference.InferenceError) -> Response:
    response.data = {"message": str(exc)}
    response.status_code = exc.status
    if exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


def handles_inference_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    """InferenceError / NoInferenceWorker -> JSON `{"message"}` with the status they carry (and
    Retry-After on the 503s worth retrying)."""

    @functools.wraps(view)
    def wrapped(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return view(request, *args, **kwargs)
        except inference.InferenceError as exc:
            return _error_into(Response(), exc)

    return wrapped


class Deferred(Response):
    """Returned by the synchronous (DRF) part of an inference view: `work`, an async callable, does the
    inference and returns the response data (or a whole HttpResponse, e.g. a stream)."""

    def __init__(self, work: Callable[[], Awaitable[Any]]) -> None:
        super().__init__(None)
        self.np_work = work


def async_inference_view(view: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Turn a DRF function view that may return `Deferred` into a Django async view: the DRF part runs
    in a thread (sync_to_async), the deferred inference on the event loop. Schema and CSRF attributes
    of the DRF view are kept (functools.update_wrapper copies them)."""

    async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = await sync_to_async(view)(request, *args, **kwargs)
        work = getattr(response, "np_work", None)
        if work is None:
            return response
        try:
            result = await work()
        except inference.InferenceError as exc:
            return _error_into(response, exc)
        if isinstance(result, HttpResponseBase):
            return result
        response.data = result
        return response

    functools.update_wrapper(wrapped, view)
    return wrapped


def no_live_inference(source: Source) -> str | None:
    """Why `source` can never be computed live, or None. Models and source sets that users create, and
    the synthetic sources that hold steering vectors, have no SAE weights that a worker could load: asking
    for them is the caller's mistake (400), unlike a model whose worker is down (503)."""
    if not source.model.inference_enabled:
        return f"model {source.model_id} has no live inference (a model you upload is for browsing)"
    if not source.inference_enabled or source.source_set.name.startswith(VECTOR_SOURCE_SET_PREFIX):
        return (f"source {source.model_id}/{source.name} has no live inference (its features were uploaded, "
                "or it holds steering vectors)")
    return None


def require_live_inference(source: Source) -> None:
    if reason := no_live_inference(source):
        raise exceptions.ValidationError({"source": reason})


def _features_by_index(source_names_and_indexes: list[tuple[str, int]], model_id: str,
                       with_explanations: bool = False) -> dict[tuple[str, int], Feature]:
    if not source_names_and_indexes:
        return {}
    condition = Q()
    by_source: dict[str, set[int]] = {}
    for name, index in source_names_and_indexes:
        by_source.setdefault(name, set()).add(index)
    for name, indexes in by_source.items():
        condition |= Q(source__name=name, index__in=sorted(indexes))
    queryset = Feature.objects.filter(condition, source__model_id=model_id).select_related("source").only(
        "id", "index", "max_act_approx", "frac_nonzero", "source__name", "source__model_id")
    if with_explanations:
        queryset = queryset.prefetch_related(Prefetch(
            "explanations",
            queryset=Explanation.objects.defer("embedding").order_by("-score_v2", "-score_v1", "id")))
    return {(f.source.name, f.index): f for f in queryset}


def _too_dense(feature: Feature | None, threshold: float) -> bool:
    return (threshold > 0 and feature is not None and feature.frac_nonzero is not None
            and feature.frac_nonzero > threshold)


# --- activation/new ------------------------------------------------------------------------------

def _activation_item(result: dict[str, Any], model_id: str, source: str, index: int,
                     ignore_bos: bool) -> dict[str, Any]:
    tokens = list(result["tokens"])
    values = list(result["activation"]["values"])
    special = list(result.get("tokensIsSpecial") or [])
    if ignore_bos and tokens and special and special[0]:  # Neuronpedia omits the BOS token
        tokens, values = tokens[1:], values[1:]
    top = max(range(len(values)), key=values.__getitem__) if values else 0
    return {"modelId": model_id, "layer": source, "source": source, "index": str(index), "tokens": tokens,
            "values": values, "maxValue": values[top] if values else 0.0, "maxValueIndex": top,
            "maxValueTokenIndex": top, "minValue": min(values, default=0.0)}


@async_inference_view
@extend_schema(tags=ACTIVATIONS, operation_id="activation_new", request=s.ActivationNewInSerializer,
               responses={200: s.ActivationNewOutSerializer, **inference_responses()},
               description="Per-token activations of one feature (or one of your vectors) on custom text, "
                           "computed live. `customText` may be a list: the answer is then a list too.")
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
@handles_inference_errors
def activation_new(request: Request) -> Response:
    """Test custom text on a feature or vector."""
    data = validated(s.ActivationNewInSerializer, request)
    ref = data["feature"]
    model_id, index = ref["modelId"], ref["index"]
    source = visible_source(request.user, model_id, ref["source"])
    feature = Feature.objects.filter(source=source, index=index).only(
        "id", "has_vector", "vector", "hook_name").first()
    if not source.model.inference_enabled:
        require_live_inference(source)
    if feature is not None and feature.has_vector:
        base: dict[str, Any] = {"vector": list(feature.vector or []), "hook": feature.hook_name}
        needs: list[str] = []
    else:
        require_live_inference(source)
        if feature is None and source.num_features is not None and index >= source.num_features:
            raise Http404(f"feature {model_id}/{source.name}/{index} not found: {source.name} has "
                          f"{source.num_features} features")
        base, needs = {"source": source.name, "index": index}, [source.name]
    texts, was_list = data["customText"]
    source_name = source.name

    async def work() -> Any:
        items = []
        for text in texts:
            result = await inference.run_inference_async(
                model_id, "activation_single", {**base, "prompt": text, "ignoreBos": data["ignoreBos"]},
                source_names=needs)
            items.append(_activation_item(result, model_id, source_name, index, data["ignoreBos"]))
        return items if was_list else items[0]

    return Deferred(work)


# --- activation/source ---------------------------------------------------------------------------

@async_inference_view
@extend_schema(tags=ACTIVATIONS, operation_id="activation_source", request=s.ActivationSourceInSerializer,
               responses={200: s.ActivationSourceOutSerializer, **inference_responses()},
               description="Every non-zero feature of one source on custom text (one string, or up to 4), "
                           "as a sparse map feature index -> [[token position, value], ...]: the whole "
                           "sparse output of the SAE, however many features fire per token.")
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
@handles_inference_errors
def activation_source(request: Request) -> Response:
    """All active features of a source for text."""
    data = validated(s.ActivationSourceInSerializer, request)
    source = visible_source(request.user, data["modelId"], data["source"])
    require_live_inference(source)
    texts, _ = data["customText"]
    model_id, name = source.model_id, source.name

    async def work() -> Any:
        return {"results": [await inference.run_inference_async(
            model_id, "active_features", {"prompt": text, "source": name, "ignoreBos": False},
            source_names=[name]) for text in texts]}

    return Deferred(work)


# --- search-all ----------------------------------------------------------------------------------

def _neuron_summary(feature: Feature | None, model_id: str) -> dict[str, Any] | None:
    if feature is None:
        return None
    return {"modelId": model_id, "layer": feature.source.name, "index": str(feature.index),
            "maxActApprox": feature.max_act_approx, "frac_nonzero": feature.frac_nonzero,
            "explanations": [{"id": str(e.pk), "description": e.description, "typeName": e.type_id,
                              "explanationModelName": e.explanation_model_id}
                             for e in feature.explanations.all()]}


async def _search_one(model_id: str, data: dict[str, Any], text: str,
                      selected: list[str]) -> dict[str, Any]:
    threshold = data["densityThreshold"]
    wanted = data["numResults"] or s.SEARCH_ALL_DEFAULT_RESULTS
    ask = min(MAX_WORKER_RESULTS, wanted * DENSITY_OVERFETCH) if threshold > 0 else wanted
    result = await inference.run_inference_async(model_id, "search_all", {
        "prompt": text, "sourceSet": data["sourceSet"], "selectedSources": selected,
        "sortByTokenIndexes": data["sortIndexes"], "ignoreBos": data["ignoreBos"], "numResults": ask,
    }, source_names=selected)
    return await sync_to_async(_search_page)(model_id, data, result, wanted, threshold)


def _search_page(model_id: str, data: dict[str, Any], result: dict[str, Any], wanted: int,
                 threshold: float) -> dict[str, Any]:
    found = _features_by_index([(a["source"], int(a["index"])) for a in result["activations"]], model_id,
                               with_explanations=True)
    items = []
    for a in result["activations"]:
        feature = found.get((a["source"], int(a["index"])))
        if _too_dense(feature, threshold):
            continue
        items.append({"modelId": model_id, "layer": a["source"], "index": str(a["index"]),
                      "values": a["values"], "maxValue": a["maxValue"], "maxValueIndex": a["maxValueIndex"],
                      "sumValues": a.get("sumValues", 0.0), "neuron": _neuron_summary(feature, model_id)})
        if len(items) == wanted:
            break
    return {"tokens": result["tokens"], "result": items, "counts": [], "sortIndexes": data["sortIndexes"]}


@async_inference_view
@extend_schema(tags=SEARCH, operation_id="search_all", request=s.SearchAllInSerializer,
               responses={200: s.SearchAllOutSerializer, **inference_responses()},
               description="Top features of a source set (or of `selectedLayers`) for a text: sorted by "
                           "max activation, or by the sum at `sortIndexes`. `densityThreshold` leaves out "
                           "features whose stored density (frac_nonzero) is higher. Results carry the stored "
                           "feature data (`neuron`: maxActApprox, density, explanations) when imported.")
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
@handles_inference_errors
def search_all(request: Request) -> Response:
    """Search via inference: top features for a whole text."""
    data = validated(s.SearchAllInSerializer, request)
    model_id = data["modelId"]
    try:
        source_set = selectors.get_source_set(model_id, data["sourceSet"])
    except Http404:
        raise Http404(f"source set {model_id}/{data['sourceSet']} not found") from None
    user = request.user
    if not can_view_model(user, source_set.model) or not can_view_source_set(user, source_set):
        raise Http404(f"source set {model_id}/{data['sourceSet']} not found")
    visible = {src.name: src for src in source_set.sources.select_related("model", "source_set")
               if can_view_source(request.user, src)}
    selected = sorted(set(data["selectedLayers"]))
    if unknown := [name for name in selected if name not in visible]:
        raise Http404(f"source {model_id}/{unknown[0]} not found in source set {data['sourceSet']}")
    searched = [visible[name] for name in selected] or list(visible.values())
    if not searched or all(no_live_inference(src) for src in searched):
        raise exceptions.ValidationError({"sourceSet": no_live_inference(searched[0]) if searched else
                                          f"source set {model_id}/{source_set.name} has no sources"})
    for src in searched if selected else ():
        require_live_inference(src)
    texts, was_list = data["text"]

    async def work() -> Any:
        pages = [await _search_one(model_id, data, text, selected) for text in texts]
        return {"results": pages} if was_list else pages[0]

    return Deferred(work)


# --- search-topk-by-token ------------------------------------------------------------------------

async def _topk_one(source: Source, data: dict[str, Any], text: str) -> dict[str, Any]:
    threshold, wanted = data["densityThreshold"], data["numResults"]
    ask = min(MAX_WORKER_RESULTS, wanted * DENSITY_OVERFETCH) if threshold > 0 else wanted
    result = await inference.run_inference_async(source.model_id, "topk_by_token", {
        "prompt": text, "source": source.name, "topK": ask, "ignoreBos": data["ignoreBos"]},
        source_names=[source.name])
    return await sync_to_async(_topk_page)(source, result, threshold, wanted)


def _topk_page(source: Source, result: dict[str, Any], threshold: float, wanted: int) -> dict[str, Any]:
    dense: set[int] = set()
    if threshold > 0:
        indexes = {top["featureIndex"] for pos in result["results"] for top in pos["topFeatures"]}
        found = _features_by_index([(source.name, i) for i in indexes], source.model_id)
        dense = {i for i in indexes if _too_dense(found.get((source.name, i)), threshold)}
    items = []
    for pos in result["results"]:
        tops = [t for t in pos["topFeatures"] if t["featureIndex"] not in dense][:wanted]
        items.append({"position": pos["tokenPosition"], "token": pos["token"],
                      "isSpecial": pos.get("isSpecial", False), "topFeatures": tops})
    return {"tokens": result["tokens"], "results": items}


@async_inference_view
@extend_schema(tags=SEARCH, operation_id="search_topk_by_token", request=s.TopkByTokenInSerializer,
               responses={200: s.TopkByTokenOutSerializer, **inference_responses()},
               description="The `numResults` most active features of one source at every token of a text. "
                           "`densityThreshold` > 0 leaves out features whose stored density is higher.")
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
@handles_inference_errors
def search_topk_by_token(request: Request) -> Response:
    """Top features by token."""
    data = validated(s.TopkByTokenInSerializer, request)
    source = visible_source(request.user, data["modelId"], data["source"])
    require_live_inference(source)
    texts, was_list = data["text"]

    async def work() -> Any:
        pages = [await _topk_one(source, data, text) for text in texts]
        return {"results": pages} if was_list else pages[0]

    return Deferred(work)
