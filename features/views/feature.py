"""The feature dashboard page, its embed, its lazily loaded panels (lists, explanations), and the staff
action that queues a model's cross-source similar features. The live panels: inference.views; "explain this
feature": autointerp.feature_pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET, require_POST

from features import selectors, similar_jobs
from features.api.permissions import require_visible
from features.models import Feature, Model
from features.views import present
from neuronpedia.api.fields import parse_id

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
    require_visible(request.user, feature.source)
    context = dashboard_context(request, feature)
    context["end"] = request.GET.get("end", "")
    return render(request, "features/feature_detail.html", context)


@xframe_options_exempt
@require_GET
def feature_embed(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    feature = selectors.get_feature(model_id, source_name, index)
    require_visible(request.user, feature.source)
    return render(request, "features/feature_embed.html", dashboard_context(request, feature))


@require_GET
def lists_panel(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    feature = selectors.get_feature_row(model_id, source_name, index)
    require_visible(request.user, feature.source)
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
    require_visible(request.user, feature.source)
    job = Job.objects.filter(pk=parse_id(request.GET.get("job", "") or "")).first()
    if job is not None and not job.is_finished:
        return HttpResponse("")
    return render(request, "features/_explanations.html#items",
                  {"feature": feature, "explanations": list(feature.explanations.all()), "oob": True},
                  status=286)


@staff_member_required
@require_POST
def compute_similar(request: HttpRequest, model_id: str) -> HttpResponse:
    """Staff: queue the model's cross-source similar-features job (or find the one already queued) and go to
    its page."""
    model = get_object_or_404(Model, id=model_id)
    job = similar_jobs.start_similar_job(model_id=model.id, requested_by=request.user)
    messages.info(request, f"Similar features of {model.id} are computed by job #{job.id}.")
    return redirect("jobs:job-detail", job.id)
