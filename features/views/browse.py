"""Browse pages (issue 18): release `/{release}`, source set `/{model}/{set}`, model `/{model}/`, and the
SAEBench-style comparison `/compare`.

Routing: `/{name}` is a model (redirect to its page), else a release (Neuronpedia's order); `/{model}/{name}`
is a source set, else a source (redirect to its page). Anything else falls back to Django's APPEND_SLASH
behaviour (`/admin` -> `/admin/`), so these catch-all routes hide no other page.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from features import browse
from features.api.permissions import require_visible
from features.hosts import live_hosts, live_source_names
from features.models import InferenceHost, Source

SLUG = re.compile(r"[-a-zA-Z0-9_]+")


def _slash_fallback(request: HttpRequest, message: str) -> HttpResponse:
    """What APPEND_SLASH would have done had this catch-all route not matched: redirect to `path/` when that
    is another page; else a 404 with `message`."""
    target = request.path_info + "/"
    try:
        match = resolve(target)
    except Resolver404:
        raise Http404(message) from None
    if match.url_name in {"model", "source", "source-set-slash"} and match.namespace == "features":
        raise Http404(message)  # we already know there is no such model / source / set
    query = request.META.get("QUERY_STRING", "")
    return redirect(request.path + "/" + (f"?{query}" if query else ""))


def _live_pairs(model_ids: set[str]) -> set[tuple[str, str]]:
    return {(m, s) for m in model_ids for s in live_source_names(m)}


# --- release -------------------------------------------------------------------------------------


def _read_only(request: HttpRequest, exists: bool) -> None:
    """A catch-all route answers other methods as if it were not there (404), or 405 for a real page."""
    if request.method not in ("GET", "HEAD"):
        if exists:
            raise _NotAllowed
        raise Http404("no such page")


class _NotAllowed(Exception):
    pass


def _routable(model_id: str) -> bool:
    """Model pages are routed by Django's slug converter (features/urls.py): a model id outside it (a dot,
    as in `llama3.1-8b`) has no page to link to, so these pages answer 404 rather than fail to link."""
    return SLUG.fullmatch(model_id) is not None


def release_or_model(request: HttpRequest, name: str) -> HttpResponse:
    try:
        _read_only(request, browse.model_exists(name) or browse.get_release(name) is not None)
    except _NotAllowed:
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if browse.model_exists(name):
        if not _routable(name):
            raise Http404(f"model {name!r} has no page (its id is not a URL slug)")
        return redirect("features:model", name)
    release = browse.get_release(name)
    if release is None:
        return _slash_fallback(request, f"there is no model or release named {name!r}")
    sets = list(release.source_sets.all())
    sources = [s for ss in sets for s in ss.sources.all()]
    live = _live_pairs({ss.model_id for ss in sets})
    return render(
        request,
        "features/release.html",
        {
            "release": release,
            "sets": sets,
            "n_sources": len(sources),
            "live_sets": {
                (ss.model_id, ss.name)
                for ss in sets
                if any((ss.model_id, s.name) in live for s in ss.sources.all())
            },
            "compare_url": reverse("features:compare") + "?" + urlencode({"release": release.name}),
        },
    )


# --- source set ----------------------------------------------------------------------------------


def source_set_page(request: HttpRequest, model_id: str, name: str) -> HttpResponse:
    source_set = browse.get_listed_set(model_id, name) if _routable(model_id) else None
    try:
        _read_only(request, source_set is not None)
    except _NotAllowed:
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if source_set is None:
        if _routable(model_id) and Source.objects.filter(model_id=model_id, name=name).exists():
            return redirect("features:source", model_id, name)
        return _slash_fallback(request, f"there is no source set or source {model_id}/{name}")
    sources = list(source_set.sources.all())
    panel = request.GET.get("panel", "")
    if panel == "browser":
        return render(
            request, "features/source_set.html#browser", _browser_context(request, source_set, sources)
        )
    if panel == "umap":
        return render(request, "features/source_set.html#umap", _umap_context(source_set, sources))
    live = live_source_names(model_id)
    rows = browse.source_rows(sources, {(model_id, s) for s in live})
    context = {
        "set": source_set,
        "model": source_set.model,
        "sources": sources,
        "rows": rows,
        "metrics": browse.METRICS,
        "has_worker": bool(live),
        "compare_url": reverse("features:compare")
        + "?"
        + urlencode({"model": model_id, "set": source_set.name}),
        "colours": {s.name: browse.layer_colour(i, len(sources)) for i, s in enumerate(sources)},
    }
    context.update(_browser_context(request, source_set, sources))
    return render(request, "features/source_set.html", context)


@require_GET
def source_set_slash(request: HttpRequest, model_id: str, name: str) -> HttpResponse:
    """`/{model}/{set}/` (not a source name: those start with `{layer}-`) -> `/{model}/{set}`."""
    if browse.get_listed_set(model_id, name) is None:
        raise Http404(f"there is no source set {model_id}/{name}")
    return redirect("features:source-set", model_id, name)


def _selected_layers(request: HttpRequest, sources: list[Source]) -> list[Source]:
    wanted = {part for part in request.GET.get("layers", "").split(",") if part}
    wanted |= set(request.GET.getlist("layer"))
    if not wanted:
        return sources
    return [s for s in sources if str(s.layer) in wanted or s.name in wanted]


def _browser_context(request: HttpRequest, source_set: Any, sources: list[Source]) -> dict[str, Any]:
    sort = "max" if request.GET.get("sort") == "max" else "index"
    after = request.GET.get("after", "")[:300]
    chosen = _selected_layers(request, sources)
    rows, next_cursor = browse.set_feature_page(chosen, sort=sort, after=after)
    layers = ",".join(str(s.layer) for s in chosen) if len(chosen) != len(sources) else ""

    def url(**changes: Any) -> str:
        params = {"sort": sort, "layers": layers, "after": after, **changes}
        return "?" + urlencode({k: v for k, v in params.items() if v not in ("", "index")})

    return {
        "browser_rows": rows,
        "sort": sort,
        "chosen": {s.name for s in chosen},
        "layers_param": layers,
        "sources": sources,
        "set": source_set,
        "next_url": url(after=next_cursor) if next_cursor else "",
        "prev_url": url(after="") if after else "",  # back to the first page
        "sort_index_url": url(sort="index", after=""),
        "sort_max_url": url(sort="max", after=""),
    }


def _umap_context(source_set: Any, sources: list[Source]) -> dict[str, Any]:
    colours = {s.name: browse.layer_colour(i, len(sources)) for i, s in enumerate(sources)}
    points = browse.set_umap_rows(sources)
    counts: dict[str, int] = {}
    for p in points:
        p["colour"] = colours[p["source"]]
        counts[p["source"]] = counts.get(p["source"], 0) + 1
    per_source = max(100, browse.UMAP_POINTS_TOTAL // max(len(sources), 1))
    shown = sorted({(p["layer"], p["source"]) for p in points})
    return {
        "set": source_set,
        "points": points,
        "circles": _circles(points),
        "per_source": per_source,
        "capped": any(n >= per_source for n in counts.values()),
        "legend": [(name, layer, colours[name]) for layer, name in shown],
    }


def _circles(points: list[dict[str, Any]]) -> str:
    """The map's points as SVG (built here, not in a template loop: thousands of points render in
    milliseconds instead of a second). Every text value is escaped."""
    from django.utils.html import escape  # noqa: PLC0415
    from django.utils.safestring import mark_safe  # noqa: PLC0415

    parts = [
        f'<a href="{escape(p["url"])}"><circle cx="{p["x"]}" cy="{p["y"]}" r="3" fill="{p["colour"]}" '
        f'data-s="{escape(p["source"])}" data-i="{p["index"]}" data-e="{escape(p["explanation"])}">'
        "</circle></a>"
        for p in points
    ]
    return mark_safe("".join(parts))  # noqa: S308 - escaped above


# --- model ---------------------------------------------------------------------------------------


@require_GET
def model_page(request: HttpRequest, model_id: str) -> HttpResponse:
    model = browse.get_model_with_sets(model_id)
    sets = browse.model_source_sets(model)
    live_names = live_source_names(model.id)
    hosts = list(live_hosts(model.id).prefetch_related("sources"))
    known_hosts = InferenceHost.objects.filter(model=model).order_by("-heartbeat_at")[:5]
    layers, grid = browse.layer_grid(sets)
    rows = browse.source_rows(
        [s for ss in sets for s in ss.sources.all()], {(model.id, n) for n in live_names}
    )
    return render(
        request,
        "features/model.html",
        {
            "model": model,
            "sets": sets,
            "layers": layers,
            "grid": grid,
            "rows": rows,
            "metrics": browse.METRICS,
            "live_sources": live_names,
            "hosts": hosts,
            "has_worker": bool(hosts) or bool(live_names),
            "last_host": None if hosts else next(iter(known_hosts), None),
            "compare_url": reverse("features:compare") + "?" + urlencode({"model": model.id}),
        },
    )


# --- comparison ----------------------------------------------------------------------------------


@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    """Every listed source's evals in one sortable, filterable table with plots (static/js/compare.js).
    `?model=`, `?set=`, `?release=` pre-fill the filters; the table holds every source either way."""
    sources = list(browse.listed_sources())
    rows = browse.source_rows(sources, _live_pairs({s.model_id for s in sources}))
    data = [r.as_json() for r in rows]
    filters = {key: request.GET.get(key, "")[:160] for key in ("model", "set", "release", "q")}
    return render(
        request,
        "features/compare.html",
        {
            "rows": rows,
            "metrics": browse.METRICS + browse.COMPARE_EXTRA,
            "data": data,
            "metric_labels": {key: label for key, label, _ in browse.METRICS + browse.COMPARE_EXTRA},
            "filters": filters,
            "models": sorted({s.model_id for s in sources}),
            "sets": sorted({s.source_set.name for s in sources}),
            "releases": sorted({s.source_set.release_id for s in sources if s.source_set.release_id}),
        },
    )


# --- feature page additions ----------------------------------------------------------------------

EMBED_OPTIONS = [  # Neuronpedia's embed query parameters (all default to true) and what each shows
    ("embedexplanation", "explanations"),
    ("embedplots", "plots (density, logits)"),
    ("embedactivations", "top activations"),
    ("embedtest", "test custom text"),
    ("embedsteer", "steer link"),
    ("embedlink", "link to the full page"),
]


def _pairs(indices: Any, values: Any, extra: Any = None, limit: int = 10) -> list[tuple[Any, ...]]:
    indices, values = list(indices or []), list(values or [])
    extra = list(extra or [])
    return [(i, v, extra[n] if n < len(extra) else None) for n, (i, v) in
            enumerate(zip(indices, values, strict=False))][:limit]


def saelens_snippet(source: Source, index: int) -> str:
    if source.saelens_release and source.saelens_sae_id:
        load = (f'sae = SAE.from_pretrained(release="{source.saelens_release}", '
                f'sae_id="{source.saelens_sae_id}")')
    elif source.hf_repo_id:
        folder = f"{source.hf_folder_id}" if source.hf_folder_id else "."
        load = (f'path = snapshot_download("{source.hf_repo_id}", allow_patterns=["{folder}/*"])\n'
                f'sae = SAE.load_from_disk(f"{{path}}/{folder}")')
    elif source.local_path:
        load = f'sae = SAE.load_from_disk("{source.local_path}")'
    else:
        return ""
    head = "from sae_lens import SAE\n"
    if source.hf_repo_id and not source.saelens_release:
        head += "from huggingface_hub import snapshot_download\n"
    return (f"{head}\n{load}\n"
            f"direction = sae.W_dec[{index}]  # feature {index}'s decoder direction (d_model)\n"
            f"acts = sae.encode(model_acts)[..., {index}]  # activation on {source.hook_name or 'its hook'}")


@require_GET
def feature_extras(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    """The feature page's extra panels, loaded after the page: cross-source similar features, correlated
    neurons and features, neuron alignment, the SAE-Lens snippet and the embed options."""
    from features import selectors, similar  # noqa: PLC0415

    feature = selectors.get_feature_row(model_id, source_name, index)
    source = require_visible(request.user, feature.source)
    correlated_features = _pairs(feature.correlated_features_indices, feature.correlated_features_pearson,
                                 feature.correlated_features_l1)
    names = selectors.top_explanations_by_index(model_id, source_name, [i for i, _, _ in correlated_features])
    page_url = request.build_absolute_uri(reverse("features:feature", args=[model_id, source_name, index]))
    return render(request, "features/_feature_extras.html", {
        "feature": feature, "source": source, "cross_similar": similar.similar_for_feature(feature),
        "correlated_features": [(i, p, l1, names.get(i, "")) for i, p, l1 in correlated_features],
        "correlated_neurons": _pairs(feature.correlated_neurons_indices, feature.correlated_neurons_pearson,
                                     feature.correlated_neurons_l1),
        "neuron_alignment": _pairs(feature.neuron_alignment_indices, feature.neuron_alignment_values,
                                   feature.neuron_alignment_l1),
        "snippet": saelens_snippet(source, index), "page_url": page_url, "embed_options": EMBED_OPTIONS,
        "other_sources": Source.objects.filter(model_id=model_id).exclude(pk=source.pk).count(),
    })


def _embed_flags(request: HttpRequest) -> dict[str, bool]:
    return {key: request.GET.get(key, "true").lower() != "false" for key, _ in EMBED_OPTIONS}


@require_GET
def feature_page(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    """`/{model}/{source}/{index}`: the dashboard; with `?embed=true` the chrome-less embed, honouring
    Neuronpedia's embed options. Without `embed` the page is the one features.views.feature renders (and
    its framing protection stays: only the embed may be framed)."""
    from features.views import feature as feature_views  # noqa: PLC0415

    if request.GET.get("embed", "").lower() != "true":
        return feature_views.feature_page(request, model_id, source_name, index)
    return feature_embed(request, model_id, source_name, index)


@xframe_options_exempt
@require_GET
def feature_embed(request: HttpRequest, model_id: str, source_name: str, index: int) -> HttpResponse:
    from features import selectors  # noqa: PLC0415
    from features.views.feature import dashboard_context  # noqa: PLC0415

    feature = selectors.get_feature(model_id, source_name, index)
    require_visible(request.user, feature.source)
    context = dashboard_context(request, feature)
    flags = _embed_flags(request)
    context.update(flags=flags, hidden=[key.removeprefix("embed") for key, on in flags.items() if not on])
    return render(request, "features/feature_embed_options.html", context)
