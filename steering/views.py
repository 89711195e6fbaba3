"""The steering page (the browser streams from /api/steer) and the share / embed pages of a result."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from features import selectors
from features.views.search import catalog_json
from neuronpedia.api.fields import MAX_INDEX, parse_id
from steering.models import SteerMethod, SteerOutput
from steering.selectors import get_steer_result

DEFAULTS = {"temperature": 0.5, "strength_multiplier": 1.0, "seed": 16, "n_tokens": 48, "freq_penalty": 1.0,
            "steer_method": SteerMethod.SIMPLE_ADDITIVE, "mode": "prompt", "prompt": ""}


def parse_feature_specs(raw: str) -> list[tuple[str, int, float]]:
    """`source:index:strength,...` -> [(source, index, strength)]; malformed parts are skipped."""
    specs = []
    for part in raw.split(","):
        bits = part.strip().split(":")
        index = parse_id(bits[1], MAX_INDEX) if len(bits) >= 2 else None
        if index is None:
            continue
        try:
            strength = float(bits[2]) if len(bits) > 2 and bits[2] else 40.0
        except ValueError:
            strength = 40.0
        specs.append((bits[0], index, strength))
    return specs[:20]


def _feature_rows(model_id: str, specs: list[tuple[str, int, float]]) -> list[dict[str, Any]]:
    names = {}
    for source in {s for s, _, _ in specs}:
        names.update({(source, i): e for i, e in selectors.top_explanations_by_index(
            model_id, source, [i for s, i, _ in specs if s == source]).items()})
    return [{"source": s, "index": i, "strength": st, "explanation": names.get((s, i), "")}
            for s, i, st in specs]


@require_GET
def steer_page(request: HttpRequest) -> HttpResponse:
    model_id = request.GET.get("model", "")
    params = {**DEFAULTS, **{k: request.GET[k] for k in DEFAULTS if k in request.GET}}
    specs = parse_feature_specs(request.GET.get("features", ""))
    features = _feature_rows(model_id, specs) if model_id else []
    return render(request, "steering/steer.html", {
        "catalog": catalog_json(), "model_id": model_id, "params": params, "features": features,
        "methods": SteerMethod.choices, "result": None})


def steer_result(share_id: str) -> dict[str, Any]:
    """The DEFAULT and STEERED halves of a shared result (by either half's id), for the templates."""
    pair = get_steer_result(share_id)
    if pair is None:
        raise Http404(f"steering result {share_id} not found")
    links = list(pair.steered.steer_features.all())
    names = selectors.top_explanations([link.feature_id for link in links])
    rows = [{"source": link.feature.source.name, "index": link.feature.index, "strength": link.strength,
             "url": link.feature.get_absolute_url(),
             "explanation": names.get(link.feature_id, "") or link.feature.vector_label} for link in links]
    return {"id": pair.share_id, "default": _shown(pair.default), "steered": _shown(pair.steered),
            "base": pair.steered, "features": rows, "chat": pair.is_chat}


def _shown(output: SteerOutput | None) -> dict[str, Any] | None:
    """The text a reader sees: the assistant's reply in chat mode, else the whole completion."""
    if output is None:
        return None
    text = output.output_text
    if output.output_chat_messages:
        text = output.output_chat_messages[-1].get("content", text)
    return {"output_text": text, "row": output}


@require_GET
def steer_share(request: HttpRequest, share_id: str) -> HttpResponse:
    result = steer_result(share_id)
    base = result["base"]
    params = {**DEFAULTS, "temperature": base.temperature, "strength_multiplier": base.strength_multiplier,
              "seed": base.seed, "n_tokens": base.num_tokens, "freq_penalty": base.freq_penalty,
              "steer_method": base.steer_method, "mode": "chat" if result["chat"] else "prompt",
              "prompt": _prompt_of(base)}
    return render(request, "steering/steer.html", {
        "catalog": catalog_json(), "model_id": base.model_id, "params": params,
        "features": result["features"], "methods": SteerMethod.choices, "result": result,
        "share_url": request.build_absolute_uri()})


def _prompt_of(output: SteerOutput) -> str:
    if output.chat_messages:
        users = [m.get("content", "") for m in output.chat_messages if m.get("role") == "user"]
        return users[-1] if users else ""
    return output.input_text


@xframe_options_exempt
@require_GET
def steer_embed(request: HttpRequest, share_id: str) -> HttpResponse:
    result = steer_result(share_id)
    return render(request, "steering/steer_embed.html", {"result": result})
