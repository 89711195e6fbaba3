"""Home, model and source pages, jump-to, random and prev/next navigation."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from features import selectors
from features.api.permissions import require_visible
from features.hosts import live_hosts, live_source_names
from features.views import present
from neuronpedia.api.fields import parse_id


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    from features.views.search import live_model_ids  # noqa: PLC0415

    models = list(selectors.home_models())
    live = live_model_ids()
    chosen = request.GET.get("model", "")
    if not any(m.id == chosen for m in models):  # default: a model with a live worker, else the first
        chosen = next((m.id for m in models if m.id in live), models[0].id if models else "")
    return render(request, "features/home.html", {
        "models": models, "releases": selectors.featured_releases(), "live": live,
        "jump": {"model": chosen, "source": request.GET.get("source", "")},
    })


@require_GET
def model_page(request: HttpRequest, model_id: str) -> HttpResponse:
    model = selectors.get_model(model_id)
    live = set(live_source_names(model.id))
    return render(request, "features/model_detail.html", {
        "model": model, "source_sets": selectors.source_sets_for_model(model), "live_sources": live,
        "has_worker": live_hosts(model.id).exists()})


@require_GET
def source_page(request: HttpRequest, model_id: str, source_name: str) -> HttpResponse:
    source = require_visible(request.user, selectors.get_source(model_id, source_name))
    if request.htmx and request.GET.get("panel") == "umap":
        return _umap_panel(request, source)
    sort = "max" if request.GET.get("sort") == "max" else "index"
    features, more_after, more_before = selectors.source_feature_page(
        source, sort=sort, after=request.GET.get("after", ""), before=request.GET.get("before", ""),
        only=selectors.listed_features_filter(source, request.user))
    explanations = selectors.top_explanations([f.pk for f in features])
    rows = [(f, explanations.get(f.pk, "")) for f in features]
    context = {"source": source, "rows": rows, "sort": sort,
               "next_url": _cursor_url(sort, "after", features[-1], sort) if features and more_after else "",
               "prev_url": _cursor_url(sort, "before", features[0], sort) if features and more_before else ""}
    if request.htmx and request.GET.get("panel") == "browser":
        return render(request, "features/source_detail.html#browser", context)
    context.update(config=sorted((source.saelens_config or {}).items()),
                   eval_groups=present.eval_groups(selectors.evals_for_source(source)),
                   has_worker=source.name in live_source_names(source.model_id))
    return render(request, "features/source_detail.html", context)


def _cursor_url(sort: str, direction: str, feature: object, _: str) -> str:
    index = feature.index  # type: ignore[attr-defined]
    cursor = f"{feature.max_act_approx!r}:{index}" if sort == "max" else str(index)  # type: ignore[attr-defined]
    params = {direction: cursor}
    if sort == "max":
        params["sort"] = "max"
    return "?" + urlencode(params)


def _umap_panel(request: HttpRequest, source: object) -> HttpResponse:
    points = present.umap_points(selectors.umap_rows(source))  # type: ignore[arg-type]
    return render(request, "features/source_detail.html#umap", {
        "source": source, "points": points, "legend": present.umap_legend(points)})


@require_GET
def jump(request: HttpRequest) -> HttpResponse:
    """The jump-to box: model + source + index -> the feature page (or the nearest page that exists).
    A model or source that no URL can hold (a space, a slash) is a 404, not a NoReverseMatch."""
    model_id = request.GET.get("model", "").strip()
    source_name = request.GET.get("source", "").strip()
    index = parse_id(request.GET.get("index", "").strip())
    try:
        if model_id and source_name and index is not None:
            return redirect("features:feature", model_id, source_name, index)
        if model_id and source_name:
            return redirect("features:source", model_id, source_name)
        if model_id:
            return redirect("features:model", model_id)
    except NoReverseMatch:
        raise Http404(f"there is no model {model_id!r}" + (f" with a source {source_name!r}" if source_name
                                                            else "")) from None
    return redirect("features:home")


@require_GET
def random_feature(request: HttpRequest, model_id: str = "", source_name: str = "") -> HttpResponse:
    feature = selectors.random_feature(model_id, source_name)
    if feature is None:
        raise Http404("there are no features to pick from yet")
    return redirect(feature.get_absolute_url())


@require_GET
def neighbour(request: HttpRequest, model_id: str, source_name: str, index: str,
              direction: str) -> HttpResponse:
    """`/{model}/{source}/{index}/next|prev`: the nearest existing feature (indices may have gaps)."""
    source = selectors.get_source(model_id, source_name)
    feature = selectors.neighbour_feature(model_id, source_name, int(index),
                                          step=1 if direction == "next" else -1,
                                          only=selectors.listed_features_filter(source, request.user))
    if feature is None:
        return redirect(reverse("features:feature", args=[model_id, source_name, int(index)])
                        + "?end=" + direction)
    return redirect(feature.get_absolute_url())
