"""Catalog data for the search and steering pages (the model/source pickers) and feature labels for them.
The search pages themselves: autointerp.feature_pages (explanations), inference.views (by inference)."""

from __future__ import annotations

import json

from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from features import selectors
from features.hosts import live_cutoff
from features.models import Feature, InferenceHost
from neuronpedia.api.fields import MAX_INDEX, parse_id


def catalog_json() -> str:
    """Public models -> source sets -> sources, for the pickers of the search and steering pages. `live`:
    a worker serves the model now (the pickers default to such a model); `bos`: whether that worker's
    model starts prompts with a BOS token (null when unknown), so "ignore BOS" is offered only there."""
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
    hosts = InferenceHost.objects.filter(heartbeat_at__gte=live_cutoff())
    return set(hosts.values_list("model_id", flat=True))


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
