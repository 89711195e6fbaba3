"""/api/steer, /api/steer-chat and /api/steer-load. Thin: validate, resolve the features the caller may
see, plan (cache lookup, liveness), then answer JSON or relay the generation as Server-Sent Events.
All steering logic (cache keys, storing, streaming) lives in steering.services. steer and steer-chat
are async views (inference.api.views.async_inference_view): validation and planning run in a
thread, waiting for the worker (and relaying its stream) on the event loop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from features.api.permissions import can_view_model, can_view_source
from features.models import Feature, Model
from inference.api.views import (
    Deferred,
    async_inference_view,
    handles_inference_errors,
    inference_responses,
    require_live_inference,
)
from neuronpedia.api.schema import JSON_ONLY, validated
from steering import selectors, services
from steering.api import serializers as s

STEERING = ["steering"]
SSE = "text/event-stream"
SSE_BODY = OpenApiResponse(
    {"type": "object", "required": ["data"], "description": "one Server-Sent Event",
     "properties": {"event": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"},
                    "data": {"type": "string", "description": "a JSON object: the result so far (`done`: "
                                                               "false), the final result, or `message`"}}},
    description="with `stream: true`: Server-Sent Events, one `data: {...}` frame each")
SSE_NOTE = (" With `stream: true` the answer is `text/event-stream`: `data: {...}` frames with the whole "
            "text so far for each half, then a final frame with `id`/`shareUrl` and `done: true` (or a frame "
            "with `message`, `status` and `done: true` when the generation failed). Cached results are "
            "answered as plain JSON even when streaming was asked for.")


def _features(user: Any, model_id: str, rows: list[dict[str, Any]]) -> list[tuple[Feature, float]]:
    model = Model.objects.filter(pk=model_id).first()
    if model is None or not can_view_model(user, model):
        raise Http404(f"model {model_id} not found")
    keys = [(r["modelId"], r["layer"], r["index"]) for r in rows]
    found = {(f.source.model_id, f.source.name, f.index): f for f in selectors.steer_feature_rows(keys)
             if can_view_source(user, f.source)}
    missing = [k for k in keys if k not in found]
    if missing:
        raise Http404("Feature not found: " + ", ".join("/".join(map(str, k)) for k in missing[:5]))
    if not model.inference_enabled:
        raise ValidationError({"modelId": f"model {model_id} has no live inference (a model you upload is "
                                          "for browsing)"})
    for feature in found.values():
        if not feature.has_vector:
            require_live_inference(feature.source)
    return [(found[k], r["strength"]) for k, r in zip(keys, rows, strict=True)]


def _limit(request: Request) -> str | None:
    value = getattr(request._request, "np_limit_remaining", None)
    return None if value is None else str(value)


def _share_url(request: Request, share_id: str | None) -> str | None:
    return request.build_absolute_uri(f"/steer/{share_id}") if share_id else None


def _respond(request: Request, plan: services.SteerPlan, stream: bool) -> Any:
    chat = plan.params.is_chat
    settings = s.settings_of(plan.params) if chat else None

    def payload(halves: dict[str, Any], share_id: str | None) -> dict[str, Any]:
        return s.result_payload(chat=chat, halves=halves, share_id=share_id,
                                share_url=_share_url(request, share_id), limit=_limit(request),
                                settings=settings)

    def result_data(result: services.SteerResult) -> dict[str, Any]:
        halves = {t: s.row_half(row) for t, row in ((services.SteerType.STEERED, result.steered),
                                                    (services.SteerType.DEFAULT, result.default))}
        return payload(halves, result.share_id)

    user = request.user
    if not plan.missing:  # all cached: no inference, answered right here
        return Response(result_data(services.run_steer(plan, user=user)))
    if not stream:
        async def work() -> Any:
            return result_data(await services.arun_steer(plan, user=user))

        return Deferred(work)

    async def frames(started: services.SteerStream) -> AsyncIterator[bytes]:
        async for event in services.astream_steer(started):
            if event.kind == "error":
                assert event.error is not None
                body = {"message": str(event.error), "status": event.error.status, "done": True}
            elif event.kind == "final":
                assert event.result is not None
                body = {**payload(event.halves, event.result.share_id), "done": True}
            else:
                body = {**payload(event.halves, None), "done": False}
            yield f"data: {json.dumps(body)}\n\n".encode()

    async def start() -> StreamingHttpResponse:
        # admitted and published before the 200: a full queue or a dead broker is a JSON 503
        started = await services.astart_stream(plan, user=user)
        response = StreamingHttpResponse(frames(started), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache, no-transform"
        response["X-Accel-Buffering"] = "no"
        return response

    return Deferred(start)


def _plan(request: Request, data: dict[str, Any], **inputs: Any) -> services.SteerPlan:
    features = _features(request.user, data["modelId"], data["features"])
    try:
        return services.plan_steer(
            model_id=data["modelId"], features=features, temperature=data["temperature"],
            n_tokens=data["n_tokens"], freq_penalty=data["freq_penalty"], seed=data["seed"],
            strength_multiplier=data["strength_multiplier"], steer_method=data["steer_method"], **inputs)
    except services.SteerNotFound as exc:
        raise Http404(str(exc)) from None


def _bad_request(exc: Exception) -> Response:
    return Response({"message": str(exc)}, status=400)


@async_inference_view
@extend_schema(tags=STEERING, operation_id="steer", request=s.SteerInSerializer,
               responses={(200, "application/json"): s.SteerCompletionOutSerializer, (200, SSE): SSE_BODY,
                          **inference_responses()},
               description="Steer a completion with SAE features or vectors: the DEFAULT and STEERED texts "
                           "(prompt included), top-5 logprobs per generated token and a share id. Identical "
                           "requests (same seed) are served from the steering cache without inference; the "
                           "DEFAULT half is shared by every steered variant of a prompt." + SSE_NOTE)
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
@handles_inference_errors
def steer(request: Request) -> Any:
    """Steer with SAE features or vectors (completion)."""
    data = validated(s.SteerInSerializer, request)
    try:
        plan = _plan(request, data, prompt=data["prompt"])
    except services.SteerInputError as exc:
        return _bad_request(exc)
    return _respond(request, plan, data["stream"])


@async_inference_view
@extend_schema(tags=STEERING, operation_id="steer_chat", request=s.SteerChatInSerializer,
               responses={(200, "application/json"): s.SteerChatOutSerializer, (200, SSE): SSE_BODY,
                          **inference_responses()},
               description="Steer a chat reply (the model's chat template). DEFAULT and STEERED each have "
                           "their own history (`defaultChatMessages`, `steeredChatMessages`); "
                           "`steer_special_tokens: false` leaves template tokens unsteered." + SSE_NOTE)
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
@handles_inference_errors
def steer_chat(request: Request) -> Any:
    """Steer with SAE features or vectors (chat)."""
    data = validated(s.SteerChatInSerializer, request)
    try:
        plan = _plan(request, data, default_chat_messages=data["defaultChatMessages"],
                     steered_chat_messages=data["steeredChatMessages"],
                     steer_special_tokens=data["steer_special_tokens"])
    except services.SteerInputError as exc:
        return _bad_request(exc)
    return _respond(request, plan, data["stream"])


@extend_schema(tags=STEERING, operation_id="steer_load", request=s.SteerLoadInSerializer,
               responses={200: s.SteerCompletionOutSerializer, **inference_responses()},
               description="A stored steering result by its share id (what `/steer/{id}` shows): the same "
                           "shape as /api/steer (or /api/steer-chat for chat results) plus settings, input "
                           "and features.")
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
def steer_load(request: Request) -> Response:
    """Load a shared steering result."""
    data = validated(s.SteerLoadInSerializer, request)
    pair = selectors.get_steer_result(data["steerOutputId"])
    if pair is None or not can_view_model(request.user, pair.steered.model):
        raise Http404(f"steer output {data['steerOutputId']} not found")
    return Response(s.pair_payload(pair, share_url=_share_url(request, pair.share_id) or "",
                                   limit=_limit(request)))
