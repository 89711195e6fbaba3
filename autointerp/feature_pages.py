"""Autointerp's pages about features: explanation search (semantic, server-rendered) and "explain this
feature" / "score its explanations" on the feature page. Their URLs keep the `features:` names
(neuronpedia/urls.py puts them in that namespace)."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from autointerp.batch import BatchParams, start_autointerp_batch
from autointerp.llm import ProviderError, resolve_provider
from autointerp.search import SearchFilters, SearchScope, search_explanations
from features import selectors
from features.embedders_registry import DEFAULT_EMBEDDER, EMBEDDERS, MINILM
from features.models import Feature
from features.views.search import catalog_json
from neuronpedia.api.fields import parse_id

PAGE_SIZE = 20
MAX_OFFSET = 10_000  # deeper pages of a semantic search are noise; and it keeps OFFSET in range


def embedder_choices(user: Any) -> list[tuple[str, bool]]:
    """(name, configured) per embedder: the local one always works; the OpenAI one needs a provider key
    (the user's, a global one or the environment)."""
    try:
        resolve_provider(user=user)
        remote = True
    except ProviderError:
        remote = False
    return [(name, name == MINILM.name or remote) for name in EMBEDDERS]


def _scope(params: Any) -> Any:
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



@require_http_methods(["POST"])
def autointerp_action(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    """Explain this feature, or score its explanations, as an autointerp job (the same batch job the
    Celery CLI starts, for one feature). Answers the job's polled status fragment (htmx) or redirects to
    the job page."""
    feature = selectors.get_feature_row(model_id, source_name, index)
    if not request.user.is_authenticated:
        return HttpResponse("Sign in to run autointerp.", status=403)
    action = request.POST.get("action", "explain")
    fields: dict[str, Any] = {
        "action": action, "feature_ids": (feature.pk,), "concurrency": 1, "user_id": request.user.pk,
        "explainer_type": request.POST.get("explainer_type", "np_offline"),
        "model": (request.POST.get("model") or "smollm2-135m-instruct").strip()[:200],
    }
    if action == "score":
        fields["score_types"] = (request.POST.get("score_type", "eleuther_embedding"),)
    try:
        job = start_autointerp_batch(params=BatchParams(**fields), requested_by=request.user)
    except ValueError as exc:
        # htmx swaps only 2xx answers: the form's output area shows why (a plain POST gets the 400)
        return render(request, "features/_autointerp_started.html", {"error": str(exc), "feature": feature},
                      status=200 if request.htmx else 400)
    if not request.htmx:
        return redirect("jobs:job-detail", job.pk)
    return render(request, "features/_autointerp_started.html", {"job": job, "feature": feature})
