"""Reads for attribution graphs: what a user may see, and the state of a generation."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from features.models import Visibility
from graphs.models import Graph, GraphStatus
from neuronpedia.lib.jobs import JobStatus


def can_view(user: Any, graph: Graph) -> bool:
    if graph.visibility != Visibility.PRIVATE:
        return True
    return bool(user and user.is_authenticated and (graph.creator_id == user.pk or user.is_staff))


def listed_graphs(user: Any, model_id: str) -> QuerySet[Graph]:
    """Graphs shown in a model's list: public ones, and the user's own (any visibility)."""
    q = Q(visibility=Visibility.PUBLIC)
    if user is not None and user.is_authenticated:
        q |= Q(creator=user)
    return (Graph.objects.filter(model_id=model_id).filter(q).select_related("job", "creator")
            .defer("nodes", "links_z"))


def owned_graphs(user: Any) -> QuerySet[Graph]:
    return Graph.objects.filter(creator=user).select_related("job").defer("nodes", "links_z")


def get_graph(user: Any, model_id: str, slug: str, *, with_data: bool = True) -> Graph:
    qs = Graph.objects.select_related("job", "creator", "model")
    if not with_data:
        qs = qs.defer("nodes", "links_z")
    graph = qs.filter(model_id=model_id, slug=slug).first()
    if graph is None or not can_view(user, graph):
        raise Http404(f"graph {model_id}/{slug} not found")
    return graph


def effective_status(graph: Graph) -> str:
    """READY / PENDING / FAILED, where a PENDING graph whose job failed or was cancelled is FAILED."""
    if graph.status == GraphStatus.PENDING and graph.job is not None and graph.job.status in (
            JobStatus.FAILED, JobStatus.CANCELLED):
        return GraphStatus.FAILED
    return graph.status


def metadata_dict(graph: Graph, request: Any = None) -> dict[str, Any]:
    """Neuronpedia's GraphMetadata shape (camelCase) plus our status, parameters and counts."""
    url = graph.get_absolute_url()
    if request is not None:
        url = request.build_absolute_uri(url)
    job = graph.job
    return {
        "id": graph.id, "modelId": graph.model_id, "sourceSetName": graph.scan or None, "slug": graph.slug,
        "prompt": graph.prompt, "promptTokens": graph.prompt_tokens, "titlePrefix": "",
        "chat": graph.chat, "visibility": graph.visibility, "origin": graph.origin,
        "status": effective_status(graph), "generationSettings": graph.params,
        "numNodes": graph.n_nodes, "numLinks": graph.n_links, "url": url,
        "dataUrl": f"/api/graph/{graph.model_id}/{graph.slug}/data",
        "jobId": job.id if job else None,
        "progress": ({"status": job.status, "done": job.done, "total": job.total, "error": job.error}
                     if job else None),
        "user": {"id": graph.creator_id, "name": graph.creator.username} if graph.creator_id else None,
        "createdAt": graph.created_at.isoformat(), "updatedAt": graph.updated_at.isoformat(),
    }


def feature_labels(graph: Graph) -> dict[str, str]:
    """The best explanation of each transcoder feature node that has a dashboard here, keyed by node id
    (the viewer shows them as node labels where the graph has no clerp). One query per layer present."""
    from features.selectors import top_explanations_by_index  # noqa: PLC0415
    from graphs.format import feature_coordinates  # noqa: PLC0415

    if not graph.scan:
        return {}
    by_layer: dict[int, dict[int, list[str]]] = {}
    for node in graph.nodes:
        coords = feature_coordinates(node)
        if coords is not None:
            layer, _pos, index = coords
            by_layer.setdefault(layer, {}).setdefault(index, []).append(node["node_id"])
    labels: dict[str, str] = {}
    for layer, indices in by_layer.items():
        found = top_explanations_by_index(graph.model_id, f"{layer}-{graph.scan}", list(indices))
        for index, text in found.items():
            for node_id in indices[index]:
                labels[node_id] = str(text)
    return labels
