"""The feature dashboard page, its embed, and its lazily loaded panels (lists, live inference)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET, require_http_methods

from features import inference, selectors
from features.api.serializers import parse_id
from features.models import Feature
from features.views import present

DEFAULT_STEER_STRENGTH = 40.0


def dashboard_context(request: HttpRequest, feature: Feature) -> dict[str, Any]:
    """Everything the dashboard panels show; one extra query (neighbours' explanations) on top of
    get_feature's four."""
    source = feature.source
    match_model = source.cos_sim_match_model_id or source.model_id
    match_source = source.cos_sim_match_source_name or source.name
    pairs = [(i, v) for i, v in zip(feature.topk_cos_sim_indices, feature.topk_cos_sim_values, strict=False)
             if not (i == feature.index and match_source == source.name)][:20]
    names = selectors.top_explanations_by_index(match_model, match_source, [i for i, _ in pairs])
    similar = [{"index": i, "value": v, "explanation": names.get(i, ""),
                "url": reverse("features:feature", args=[match_model, match_source, i])} for i, v in pairs]
    strength = round(feature.max_act_approx or DEFAULT_STEER_STRENGTH, 2)
    steer_url = "/steer?" + urlencode({"model": source.model_id,
                                        "features": f"{source.name}:{feature.index}:{strength}"})
    embed_url = request.build_absolute_uri(reverse("features:feature-embed",
                                                   args=[source.model_id, source.name, feature.index]))
    activations = list(feature.activations.all())
    scale = feature.max_act_approx or max([a.max_value for a in activations] or [1.0])  # examples: their own
    return {
        "feature": feature, "source": source, "groups": present.group_activations(activations),
        "n_activations": len(activations), "scale": scale, "similar": similar,
        "similar_source": f"{match_model}/{match_source}", "similar_model": match_model,
        "similar_source_name": match_source, "steer_url": steer_url,
        "embed_url": embed_url, "presets": present.CONTEXT_PRESETS,
        "default_preset": "snippet", "show_breaks": source.source_set.default_show_breaks,
        "explanations": list(feature.explanations.all()),
    }


@require_GET
def feature_page(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    feature = selectors.get_feature(model_id, source_name, index)
    context = dashboard_context(request, feature)
    context["end"] = request.GET.get("end", "")
    return render(request, "features/feature_detail.html", context)


@xframe_options_exempt
@require_GET
def feature_embed(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    feature = selectors.get_feature(model_id, source_name, index)
    return render(request, "features/feature_embed.html", dashboard_context(request, feature))


@require_GET
def lists_panel(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    feature = selectors.get_feature_row(model_id, source_name, index)
    return render(request, "features/_lists_panel.html", lists_panel_context(request, feature))


def lists_panel_context(request: HttpRequest, feature: Feature, **extra: Any) -> dict[str, Any]:
    containing = selectors.visible_lists_by_feature([feature], request.user)[feature.pk]
    mine = list(selectors.lists_for_user(request.user))
    held = {fl.pk for fl in containing}
    return {"feature": feature, "containing": containing,
            "addable": [fl for fl in mine if fl.pk not in held], **extra}


@require_GET
def explanations_panel(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    """Polled while an autointerp job of this feature runs (`?job=<id>`): nothing until the job finishes,
    then the explanations list, swapped into the page out of band, and 286 (htmx: stop polling)."""
    from neuronpedia.jobs.models import Job  # noqa: PLC0415

    feature = selectors.get_feature(model_id, source_name, index)
    job = Job.objects.filter(pk=parse_id(request.GET.get("job", "") or "")).first()
    if job is not None and not job.is_finished:
        return HttpResponse("")
    return render(request, "features/_explanations.html#items",
                  {"feature": feature, "explanations": list(feature.explanations.all()), "oob": True},
                  status=286)


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


@require_http_methods(["POST"])
def autointerp_action(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    """Explain this feature, or score its explanations, as an autointerp job (the same batch job the
    Celery CLI starts, for one feature). Answers the job's polled status fragment (htmx) or redirects to
    the job page."""
    from autointerp.batch import BatchParams  # noqa: PLC0415
    from autointerp.services import start_autointerp_batch  # noqa: PLC0415

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
