"""The graph page (/{model}/graph?slug=...): a server-rendered shell; static/js/graph.js draws the graph
from /api/graph/{model}/{slug}/data. Also the generation form, the live status of a generation
(htmx polling), and the upload form."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from features.api.permissions import can_view_model
from features.models import Model, SourceSet, Visibility
from graphs import selectors, services
from graphs.format import MAX_UPLOAD_BYTES
from graphs.models import Graph, GraphStatus
from graphs.services import GenerationParams, GraphError

FORM_FIELDS = {"max_n_logits": int, "desired_logit_prob": float, "node_threshold": float,
               "edge_threshold": float, "max_feature_nodes": int, "batch_size": int}


def _model(request: HttpRequest, model_id: str) -> Model:
    model = Model.objects.filter(id=model_id).first()
    if model is None or not can_view_model(request.user, model):
        raise Http404(f"model {model_id} not found")
    return model


def _has_worker(model_id: str) -> bool:
    from inference import client as inference  # noqa: PLC0415

    return inference.live_hosts(model_id).exists()


def _page(request: HttpRequest, model: Model, graph: Graph | None, *, status: int = 200,
          form_error: str = "", form: dict | None = None) -> HttpResponse:
    graphs = list(selectors.listed_graphs(request.user, model.id)[:100])
    scans = list(SourceSet.objects.filter(model=model, type="transcoder").values_list("name", flat=True))
    defaults = GenerationParams().to_dict()
    context = {
        "model": model, "graph": graph, "graphs": graphs, "scans": scans or [services.DEFAULT_SOURCE_SET],
        "defaults": defaults, "form": form or {}, "form_error": form_error,
        "visibilities": Visibility.choices, "max_upload_mb": MAX_UPLOAD_BYTES // 2**20,
        "status": selectors.effective_status(graph) if graph else None,
        "job": graph.job if graph else None,
        "has_worker": _has_worker(model.id) if graph and graph.status == GraphStatus.PENDING else True,
    }
    if graph is not None:
        context["graph_meta_json"] = json.dumps({
            "modelId": model.id, "slug": graph.slug, "scan": graph.scan, "prompt": graph.prompt,
            "dataUrl": f"/api/graph/{model.id}/{graph.slug}/data", "interveneUrl": "/api/graph/intervene",
            "canIntervene": bool(graph.scan), "layers": model.layers,
        })
    return render(request, "graphs/graph.html", context, status=status)


@require_GET
def graph_index(request: HttpRequest) -> HttpResponse:
    """/graph: the graphs of the first model that has transcoders (the nav's link)."""
    source_set = SourceSet.objects.filter(type="transcoder").order_by("model_id").first()
    model = source_set.model if source_set else Model.objects.order_by("id").first()
    if model is None:
        raise Http404("no models yet")
    return redirect("graphs:graph", model_id=model.id)


@require_GET
def graph_page(request: HttpRequest, model_id: str) -> HttpResponse:
    model = _model(request, model_id)
    slug = request.GET.get("slug", "")
    graph = selectors.get_graph(request.user, model.id, slug, with_data=False) if slug else None
    return _page(request, model, graph)


@require_GET
def graph_status(request: HttpRequest, model_id: str) -> HttpResponse:
    """The progress of a generation (polled by htmx); a ready graph makes the page reload."""
    graph = selectors.get_graph(request.user, model_id, request.GET.get("slug", ""), with_data=False)
    status = selectors.effective_status(graph)
    response = render(request, "graphs/_status.html", {
        "graph": graph, "status": status, "job": graph.job,
        "has_worker": status != GraphStatus.PENDING or _has_worker(graph.model_id)})
    if status == GraphStatus.READY and request.htmx:
        response["HX-Refresh"] = "true"
    return response


@require_POST
def graph_generate(request: HttpRequest, model_id: str) -> HttpResponse:
    model = _model(request, model_id)
    form = {k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
    try:
        values = {}
        for name, cast in FORM_FIELDS.items():
            raw = request.POST.get(name, "").strip()
            if raw:
                try:
                    values[name] = cast(raw)
                except ValueError:
                    raise GraphError(f"{name} must be a number", field=name) from None
        graph, created = services.request_graph(
            model=model, prompt=request.POST.get("prompt", ""), params=GenerationParams.from_dict(values),
            chat=request.POST.get("chat") == "on", slug=request.POST.get("slug", "").strip() or None,
            source_set=request.POST.get("source_set") or services.DEFAULT_SOURCE_SET, user=request.user,
            visibility=request.POST.get("visibility") or Visibility.PUBLIC)
    except GraphError as exc:
        return _page(request, model, None, status=400, form_error=str(exc), form=form)
    if not created:
        messages.info(request, "This prompt was already graphed with the same settings: "
                               "here is the stored graph.")
    return redirect(graph.get_absolute_url())


@require_POST
def graph_upload(request: HttpRequest, model_id: str) -> HttpResponse:
    model = _model(request, model_id)
    upload = request.FILES.get("file")
    error = ""
    if not request.user.is_authenticated:
        error = "sign in to upload a graph"
    elif upload is None:
        error = "choose a graph JSON file to upload"
    elif upload.size > MAX_UPLOAD_BYTES:
        error = f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB"
    if not error:
        try:
            data = json.loads(upload.read())
        except (ValueError, UnicodeDecodeError) as exc:
            error = f"the file is not JSON: {exc}"
    if not error:
        try:
            graph = services.import_graph(model=model, data=data, user=request.user,
                                          visibility=request.POST.get("visibility") or Visibility.PUBLIC,
                                          slug=request.POST.get("slug", "").strip() or None)
        except GraphError as exc:
            error = str(exc)
    if error:
        return _page(request, model, None, status=400 if request.user.is_authenticated else 403,
                     form_error=f"Upload refused: {error}")
    return redirect(graph.get_absolute_url())


@require_POST
def graph_delete(request: HttpRequest, model_id: str) -> HttpResponse:
    graph = selectors.get_graph(request.user, model_id, request.POST.get("slug", ""), with_data=False)
    try:
        services.delete_graph(graph=graph, user=request.user)
    except GraphError as exc:
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain")
    messages.info(request, f"Graph {graph.slug} deleted.")
    return redirect("graphs:graph", model_id=model_id)
