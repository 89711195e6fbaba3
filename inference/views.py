"""The live-inference pages: search by inference and top-k by token (the browser then calls
/api/search-all and /api/search-topk-by-token), and the feature page's live panels (test custom text, live
decoder neighbours). Their URLs keep the `features:` names (neuronpedia/urls.py)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from features import selectors
from features.views.search import catalog_json
from inference import client as inference


@require_GET
def inference_search(request: HttpRequest) -> HttpResponse:
    return render(request, "features/search_inference.html", {
        "catalog": catalog_json(), "params": request.GET})


@require_GET
def topk_search(request: HttpRequest) -> HttpResponse:
    return render(request, "features/search_topk.html", {"catalog": catalog_json(), "params": request.GET})


@require_GET
def live_panel(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    """The "test custom text" box: usable when a live worker serves this source, else says why not."""
    feature = selectors.get_feature_row(model_id, source_name, index)
    return render(request, "features/_live_panel.html",
                  {"feature": feature, "live_error": _live_error(model_id, source_name)})


def _live_error(model_id: str, source_name: str) -> str:
    try:
        inference.require_live(model_id, [source_name])
    except inference.NoInferenceWorker as exc:
        return str(exc)
    return ""


@require_http_methods(["GET", "POST"])
def similar_live(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    """Live decoder cos-sim neighbours through the model's inference worker."""
    feature = selectors.get_feature_row(model_id, source_name, index)
    results: list[dict[str, Any]] = []
    error = ""
    try:
        reply = inference.run_inference(model_id, "topk_decoder_cossim",
                                         {"source": source_name, "index": index, "numResults": 11},
                                         source_names=[source_name], timeout=60)
    except inference.InferenceError as exc:
        error = str(exc)
    else:
        rows = [(r["feature"], r["cosineSimilarity"]) for r in reply.get("topkDecoderCossimFeatures", [])]
        rows = [(f, c) for f, c in rows if not (f["index"] == index and f["source"] == source_name)]
        names = selectors.top_explanations_by_index(model_id, source_name, [f["index"] for f, _ in rows])
        results = [{"index": f["index"], "value": c, "explanation": names.get(f["index"], ""),
                    "url": reverse("features:feature", args=[f.get("model") or model_id, f["source"],
                                                             f["index"]])} for f, c in rows]
    return render(request, "features/_similar_live.html",
                  {"feature": feature, "results": results, "error": error})
