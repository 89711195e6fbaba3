"""Search pages: by explanation (semantic, server-rendered), by inference and top-k by token (the
browser calls /api/search-all and /api/search-topk-by-token), and feature labels for those pages."""

from __future__ import annotations

import json
import math
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from features import selectors
from features.api.serializers import MAX_INDEX, parse_id
from features.embedders_registry import DEFAULT_EMBEDDER, EMBEDDERS
from features.models import Feature

PAGE_SIZE = 20
MAX_OFFSET = 10_000  # deeper pages of a semantic search are noise; and it keeps OFFSET in range


def catalog_json() -> str:
    """Public models -> source sets -> sources, for the pickers of the search and steering pages. `live`:
    a worker serves the model now (the pickers default to such a model); `bos`: whether that worker's
    model starts prompts with a BOS token (null when unknown), so "ignore BOS" is offered only there."""
    from features.inference import live_cutoff  # noqa: PLC0415
    from features.models import InferenceHost  # noqa: PLC0415

    bos: dict[str, bool | None] = {}
    for model_id, info in (InferenceHost.objects.filter(heartbeat_at__gte=live_cutoff())
                           .values_list("model_id", "info")):
        flag = (info or {}).get("prepend_bos")
        bos[model_id] = bos.get(model_id) if flag is None else bool(flag)
    data = [{"id": m.id, "name": m.display_name or m.id, "instruct": m.instruct, "live": m.id in bos,
             "bos": bos.get(m.id),
             "sets": [{"name": s.name, "sources": [src.name for src in s.sources.all()]}
                      for s in m.source_sets.all()]}
            for m in selectors.home_models()]
    return json.dumps(data)


def live_model_ids() -> set[str]:
    from features.inference import live_cutoff  # noqa: PLC0415
    from features.models import InferenceHost  # noqa: PLC0415

    hosts = InferenceHost.objects.filter(heartbeat_at__gte=live_cutoff())
    return set(hosts.values_list("model_id", flat=True))


def embedder_choices(user: Any) -> list[tuple[str, bool]]:
    """(name, configured) per embedder: the local one always works; the OpenAI one needs a provider key
    (the user's, a global one or the environment)."""
    from autointerp.llm import ProviderError, resolve_provider  # noqa: PLC0415
    from features.embedders_registry import MINILM  # noqa: PLC0415

    try:
        resolve_provider(user=user)
        remote = True
    except ProviderError:
        remote = False
    return [(name, name == MINILM.name or remote) for name in EMBEDDERS]


def _scope(params: Any) -> Any:
    from autointerp.search import SearchScope  # noqa: PLC0415

    model, source_set = params.get("model", ""), params.get("source_set", "")
    source = params.get("source", "")
    if model and source:
        return SearchScope(kind="sources", sources=((model, source),))
    if model and source_set:
        return SearchScope(kind="source_set", model_id=model, source_set=source_set)
    if model:
        return SearchScope(kind="model", model_id=model)
    return SearchScope()


@require_GET
def explanation_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    embedder = request.GET.get("embedder") or DEFAULT_EMBEDDER
    offset = parse_id(request.GET.get("offset", "") or "0", MAX_OFFSET)
    if offset is None:
        return render(request, "400.html", {
            "status": 400, "title": "Bad request",
            "message": f"offset must be a whole number from 0 to {MAX_OFFSET:,}"}, status=400)
    try:
        min_score = _min_score(request.GET.get("min_score", ""))
    except ValueError:
        return render(request, "400.html", {
            "status": 400, "title": "Bad request",
            "message": "min_score must be a number (e.g. 0.5)"}, status=400)
    context: dict[str, Any] = {"q": query, "embedder": embedder, "embedders": embedder_choices(request.user),
                               "params": request.GET, "picker": request.GET.get("picker") == "1"}
    if query:
        context.update(_run_search(request, query, embedder, offset, min_score))
    if request.htmx:
        return render(request, "features/search_explanations.html#results", context)
    context["catalog"] = catalog_json()
    return render(request, "features/search_explanations.html", context)


def _min_score(text: str) -> float | None:
    """`?min_score=` as a finite float, None when absent; ValueError when it is not a finite number."""
    if not text.strip():
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _run_search(request: HttpRequest, query: str, embedder: str, offset: int,
                min_score: float | None) -> dict[str, Any]:
    from autointerp.llm import ProviderError  # noqa: PLC0415
    from autointerp.search import SearchFilters, search_explanations  # noqa: PLC0415

    try:
        page = search_explanations(query, scope=_scope(request.GET), user=request.user, embedder=embedder,
                                   offset=offset, limit=PAGE_SIZE,
                                   rank=request.GET.get("rank") or "similarity",
                                   filters=SearchFilters(min_score=min_score))
    except (ValueError, RuntimeError, ProviderError) as exc:
        return {"error": str(exc)}
    keys = Q()
    for hit in page.hits:
        keys |= Q(source__model_id=hit.model_id, source__name=hit.source, index=hit.index)
    max_acts = {(f.source.model_id, f.source.name, f.index): f.max_act_approx
                for f in Feature.objects.filter(keys).select_related("source")
                .only("index", "max_act_approx", "source__name", "source__model_id")} if page.hits else {}
    hits = [(hit, max_acts.get((hit.model_id, hit.source, hit.index))) for hit in page.hits]
    return {"page": page, "hits": hits, "last_number": offset + len(hits),
            "next_offset": offset + PAGE_SIZE if page.has_more else None,
            "prev_offset": max(0, offset - PAGE_SIZE) if offset else None}


@require_GET
def inference_search(request: HttpRequest) -> HttpResponse:
    return render(request, "features/search_inference.html", {
        "catalog": catalog_json(), "params": request.GET})


@require_GET
def topk_search(request: HttpRequest) -> HttpResponse:
    return render(request, "features/search_topk.html", {"catalog": catalog_json(), "params": request.GET})


@require_GET
def feature_labels(request: HttpRequest) -> JsonResponse:
    """`?model=M&keys=SOURCE:INDEX,...[&snippets=1]` -> {"SOURCE:INDEX": {"explanation", "maxAct", "density",
    "snippet" (the top example around its max, or null), "url"}} (≤ 200 keys)."""
    model_id = request.GET.get("model", "")
    wanted: list[tuple[str, int]] = []
    for key in request.GET.get("keys", "").split(",")[:200]:
        source, _, index = key.rpartition(":")
        number = parse_id(index, MAX_INDEX)
        if source and number is not None:
            wanted.append((source, number))
    if not model_id or not wanted:
        return JsonResponse({})
    condition = Q()
    for source, index in wanted:
        condition |= Q(source__name=source, index=index)
    features = list(Feature.objects.filter(condition, source__model_id=model_id).select_related("source")
                    .only("id", "index", "max_act_approx", "frac_nonzero", "source__name",
                          "source__model_id"))
    names = selectors.top_explanations([f.pk for f in features])
    snippets = selectors.top_snippets([f.pk for f in features]) if request.GET.get("snippets") == "1" else {}
    return JsonResponse({f"{f.source.name}:{f.index}": {"explanation": names.get(f.pk, ""),
                                                        "maxAct": f.max_act_approx, "density": f.frac_nonzero,
                                                        "snippet": snippets.get(f.pk),
                                                        "url": f.get_absolute_url()} for f in features})
