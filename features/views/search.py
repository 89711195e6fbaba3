"""Search pages: by explanation (semantic, server-rendered), by inference and top-k by token (the
browser calls /api/search-all and /api/search-topk-by-token), and feature labels for those pages."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from features import selectors
from features.embedders_registry import DEFAULT_EMBEDDER, EMBEDDERS
from features.models import Feature

PAGE_SIZE = 20


def catalog_json() -> str:
    """Public models -> source sets -> sources, for the pickers of the search and steering pages."""
    from features.inference import live_cutoff  # noqa: PLC0415
    from features.models import InferenceHost  # noqa: PLC0415

    live = set(InferenceHost.objects.filter(heartbeat_at__gte=live_cutoff())
               .values_list("model_id", flat=True))
    data = [{"id": m.id, "name": m.display_name or m.id, "instruct": m.instruct, "live": m.id in live,
             "sets": [{"name": s.name, "sources": [src.name for src in s.sources.all()]}
                      for s in m.source_sets.all()]}
            for m in selectors.home_models()]
    return json.dumps(data)


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
    offset = int(request.GET["offset"]) if request.GET.get("offset", "").isdigit() else 0
    context: dict[str, Any] = {"q": query, "embedder": embedder, "embedders": list(EMBEDDERS),
                               "params": request.GET, "picker": request.GET.get("picker") == "1"}
    if query:
        context.update(_run_search(request, query, embedder, offset))
    if request.htmx:
        return render(request, "features/search_explanations.html#results", context)
    context["catalog"] = catalog_json()
    return render(request, "features/search_explanations.html", context)


def _run_search(request: HttpRequest, query: str, embedder: str, offset: int) -> dict[str, Any]:
    from autointerp.llm import ProviderError  # noqa: PLC0415
    from autointerp.search import search_explanations  # noqa: PLC0415

    try:
        page = search_explanations(query, scope=_scope(request.GET), user=request.user, embedder=embedder,
                                   offset=offset, limit=PAGE_SIZE)
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
    """`?model=M&keys=SOURCE:INDEX,...` -> {"SOURCE:INDEX": {"explanation", "maxAct", "url"}} (≤ 200 keys)."""
    model_id = request.GET.get("model", "")
    wanted: list[tuple[str, int]] = []
    for key in request.GET.get("keys", "").split(",")[:200]:
        source, _, index = key.rpartition(":")
        if source and index.isdigit():
            wanted.append((source, int(index)))
    if not model_id or not wanted:
        return JsonResponse({})
    condition = Q()
    for source, index in wanted:
        condition |= Q(source__name=source, index=index)
    features = list(Feature.objects.filter(condition, source__model_id=model_id).select_related("source")
                    .only("id", "index", "max_act_approx", "source__name", "source__model_id"))
    names = selectors.top_explanations([f.pk for f in features])
    return JsonResponse({f"{f.source.name}:{f.index}": {"explanation": names.get(f.pk, ""),
                                                        "maxAct": f.max_act_approx,
                                                        "url": f.get_absolute_url()} for f in features})
