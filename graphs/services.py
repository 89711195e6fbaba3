"""Writes for attribution graphs: request a generation (job on the model's inference queue), store what
the worker computed, import an uploaded graph, delete, and run an intervention through the worker."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from dataclasses import asdict, dataclass, fields
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.text import slugify

from features.models import Model, SourceSet, Visibility
from graphs.format import MAX_PROMPT_CHARS, SLUG_RE, GraphFormatError, feature_coordinates, validate_graph
from graphs.models import Graph, GraphOrigin, GraphStatus
from neuronpedia.jobs import registry
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.lib.jobs import JobStatus
from neuronpedia.queues import inference_queue

TASK_NAME = "inference_worker.tasks.generate_graph"
DEFAULT_SOURCE_SET = "plt-demo"
MAX_INTERVENTIONS = 64


class GraphError(Exception):
    """A request we refuse; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass(frozen=True)
class GenerationParams:
    """The knobs of circuit-tracer's attribute() + prune_graph(), with their bounds."""

    max_n_logits: int = 10
    desired_logit_prob: float = 0.95
    node_threshold: float = 0.8
    edge_threshold: float = 0.98
    max_feature_nodes: int = 2000
    batch_size: int = 64

    BOUNDS = {  # noqa: RUF012 (class constant, not a field)
        "max_n_logits": (1, 50),
        "desired_logit_prob": (0.5, 0.999),
        "node_threshold": (0.1, 1.0),
        "edge_threshold": (0.1, 1.0),
        "max_feature_nodes": (10, 10_000),
        "batch_size": (1, 1024),
    }

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            lo, hi = self.BOUNDS[f.name]
            integer = f.type in ("int", int)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise GraphError(f"{f.name} must be a number", field=f.name)
            if integer and value != int(value):
                raise GraphError(f"{f.name} must be an integer", field=f.name)
            if not math.isfinite(value) or not lo <= value <= hi:
                raise GraphError(f"{f.name} must be between {lo} and {hi}", field=f.name)
            object.__setattr__(self, f.name, int(value) if integer else float(value))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationParams:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cache_key(*, model_id: str, source_set: str, prompt: str, chat: bool, params: GenerationParams) -> str:
    blob = json.dumps({"model": model_id, "scan": source_set, "prompt": prompt, "chat": chat,
                       **params.to_dict()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _visible_q(user: Any) -> Q:
    q = Q(visibility__in=[Visibility.PUBLIC, Visibility.UNLISTED])
    if user is not None and getattr(user, "is_authenticated", False):
        q |= Q(creator=user)
    return q


def _new_slug(model_id: str, prompt: str) -> str:
    base = slugify(prompt)[:40].strip("-") or "graph"
    while True:
        slug = f"{base}-{secrets.token_hex(3)}"
        if not Graph.objects.filter(model_id=model_id, slug=slug).exists():
            return slug


def _check_slug(model_id: str, slug: str) -> None:
    if not SLUG_RE.match(slug):
        raise GraphError("slug must be 1-128 lowercase letters, digits, '_' or '-'", field="slug")
    if Graph.objects.filter(model_id=model_id, slug=slug).exists():
        raise GraphError(f"a graph with slug {slug!r} already exists for {model_id}", field="slug")


def request_graph(*, model: Model, prompt: str, params: GenerationParams | None = None, chat: bool = False,
                  slug: str | None = None, source_set: str = DEFAULT_SOURCE_SET, user: Any = None,
                  visibility: str = Visibility.PUBLIC) -> tuple[Graph, bool]:
    """Return (graph, created). A graph with the same model, source set, prompt, chat flag and
    parameters that the user may see (and that did not fail) is returned as it is: the cache. Otherwise
    a PENDING Graph row and a GENERATE_GRAPH job are created, and the worker task is sent to the
    model's inference queue when the transaction commits."""
    params = params or GenerationParams()
    if not isinstance(prompt, str) or not prompt.strip():
        raise GraphError("prompt must not be empty", field="prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise GraphError(f"prompt is longer than {MAX_PROMPT_CHARS} characters", field="prompt")
    if visibility not in Visibility.values:
        raise GraphError(f"visibility must be one of {', '.join(Visibility.values)}", field="visibility")
    if visibility == Visibility.PRIVATE and not getattr(user, "is_authenticated", False):
        raise GraphError("sign in (or send an API key) to create a private graph", field="visibility")
    if not SourceSet.objects.filter(model=model, name=source_set).exists():
        raise GraphError(f"model {model.id} has no source set {source_set!r}", field="sourceSetName")
    if chat and not model.instruct:
        raise GraphError(f"model {model.id} has no chat template", field="chat")
    key = cache_key(model_id=model.id, source_set=source_set, prompt=prompt, chat=chat, params=params)
    cached = (Graph.objects.filter(model=model, cache_key=key).exclude(status=GraphStatus.FAILED)
              .exclude(job__status__in=[JobStatus.FAILED, JobStatus.CANCELLED])
              .filter(_visible_q(user)).order_by("-status", "-created_at").first())
    if cached is not None:
        return cached, False
    if slug:
        _check_slug(model.id, slug)
    else:
        slug = _new_slug(model.id, prompt)
    creator = user if getattr(user, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            graph = Graph.objects.create(model=model, scan=source_set, slug=slug, prompt=prompt, chat=chat,
                                         creator=creator, visibility=visibility, params=params.to_dict(),
                                         cache_key=key, status=GraphStatus.PENDING)
            job = Job.objects.create(
                kind=JobKind.GENERATE_GRAPH, title=f"Graph {model.id}/{slug}", requested_by=creator,
                model_id_ref=model.id, source_ref=source_set,
                params={"model_id": model.id, "source_set": source_set, "prompt": prompt, "chat": chat,
                        **params.to_dict(), "slug": slug, "graph_id": graph.id})
            graph.job = job
            graph.save(update_fields=["job"])
            registry.enqueue(job)
    except IntegrityError:
        raise GraphError(f"a graph with slug {slug!r} already exists for {model.id}", field="slug") from None
    return graph, True


def enqueue_graph_job(job: Job) -> None:
    from neuronpedia.celery import app  # noqa: PLC0415

    app.send_task(TASK_NAME, kwargs={"job_id": job.id}, queue=inference_queue(job.model_id_ref))


def _fill(graph: Graph, data: dict[str, Any]) -> None:
    meta = dict(data["metadata"])
    graph.prompt_tokens = list(meta.pop("prompt_tokens"))
    meta.pop("prompt", None)
    meta.pop("slug", None)
    graph.metadata = meta
    graph.qparams = data.get("qParams") or {}
    graph.nodes = data["nodes"]
    graph.n_nodes = len(data["nodes"])
    graph.set_links(data["links"])


def _drop_duplicate_nodes(graph: dict[str, Any]) -> dict[str, Any]:
    nodes = graph.get("nodes")
    if not isinstance(nodes, list):
        return graph
    seen: set[Any] = set()
    kept = []
    for node in nodes:
        key = node.get("node_id") if isinstance(node, dict) else None
        if key is not None and key in seen:
            continue
        seen.add(key)
        kept.append(node)
    if len(kept) == len(nodes):
        return graph
    meta = dict(graph.get("metadata") or {})
    info = dict(meta.get("info") or {}) if isinstance(meta.get("info"), dict) else {}
    info["dropped_duplicate_node_ids"] = len(nodes) - len(kept)
    meta["info"] = info
    return {**graph, "metadata": meta, "nodes": kept}


def store_generated_graph(*, job: Job, graph: dict[str, Any]) -> Graph:
    """Store the graph the worker computed for `job` (Neuronpedia's JSON format) on the Graph row the
    job was created for, and mark it READY. Safe to call twice (the second call overwrites).

    circuit-tracer names error nodes `0_{layer}_{pos}`, which can equal a layer-0 feature's
    `{layer}_{feature}_{pos}` (feature index < n_layers): such a later duplicate is dropped (links can
    not tell them apart) and counted in metadata.info, instead of failing the whole job."""
    graph = _drop_duplicate_nodes(graph)
    try:
        validate_graph(graph)
    except GraphFormatError as exc:
        raise ValueError(f"the worker produced an invalid graph: {exc}") from exc
    graph_id = (job.params or {}).get("graph_id")
    with transaction.atomic():
        row = Graph.objects.select_for_update().filter(id=graph_id).first()
        if row is None:
            raise ValueError(f"job {job.id} has no graph row (graph_id={graph_id!r}); it was deleted")
        _fill(row, graph)
        if "generation_settings" not in row.metadata:
            row.metadata["generation_settings"] = {k: job.params.get(k) for k in GenerationParams.BOUNDS}
        row.status = GraphStatus.READY
        row.save()
    return row


def import_graph(*, model: Model, data: Any, user: Any, visibility: str = Visibility.PUBLIC,
                 slug: str | None = None) -> Graph:
    """Store a graph made elsewhere (Neuronpedia's format, checked strictly)."""
    try:
        validate_graph(data)
    except GraphFormatError as exc:
        raise GraphError(f"invalid graph JSON: {exc}") from exc
    if visibility not in Visibility.values:
        raise GraphError(f"visibility must be one of {', '.join(Visibility.values)}", field="visibility")
    slug = slug or data["metadata"]["slug"]
    _check_slug(model.id, slug)
    details = data["metadata"].get("feature_details") or {}
    scan = details.get("neuronpedia_source_set") or data["metadata"]["scan"]
    if not SourceSet.objects.filter(model=model, name=scan).exists():
        scan = ""  # the features are not ours: the viewer shows the graph without dashboards
    graph = Graph(model=model, slug=slug, scan=scan, prompt=data["metadata"]["prompt"],
                  creator=user if getattr(user, "is_authenticated", False) else None,
                  visibility=visibility, origin=GraphOrigin.UPLOADED, status=GraphStatus.READY,
                  params=dict(data["metadata"].get("generation_settings") or {}))
    _fill(graph, data)
    try:
        with transaction.atomic():
            graph.save()
    except IntegrityError:
        raise GraphError(f"a graph with slug {slug!r} already exists for {model.id}", field="slug") from None
    return graph


def delete_graph(*, graph: Graph, user: Any) -> None:
    if not (getattr(user, "is_authenticated", False) and (graph.creator_id == user.pk or user.is_staff)):
        raise GraphError("you can only delete graphs you created", status=403)
    graph.delete()


# --- interventions --------------------------------------------------------------------------------

def intervention_payload(*, graph: Graph, interventions: list[dict[str, Any]], top_k: int = 10,
                         max_new_tokens: int = 12) -> dict[str, Any]:
    """The `graph_intervene` payload for a list of {node_id, mode: "value"|"scale", amount}: a scale k
    becomes value = k x the node's activation in the graph (k = 0 ablates)."""
    if not graph.scan:
        raise GraphError("this graph's features are not served here (uploaded from elsewhere)")
    if not isinstance(interventions, list) or not 1 <= len(interventions) <= MAX_INTERVENTIONS:
        raise GraphError(f"interventions must be a list of 1-{MAX_INTERVENTIONS} items",
                         field="interventions")
    by_id = {n["node_id"]: n for n in graph.nodes}
    out = []
    for i, item in enumerate(interventions):
        if not isinstance(item, dict):
            raise GraphError(f"interventions[{i}] must be an object", field="interventions")
        node = by_id.get(item.get("node_id"))
        if node is None:
            raise GraphError(f"interventions[{i}]: no node {item.get('node_id')!r} in this graph",
                             field="interventions")
        coords = feature_coordinates(node)
        if coords is None:
            raise GraphError(f"interventions[{i}]: {node['node_id']} is not a transcoder feature node "
                             f"(only features can be steered)", field="interventions")
        mode, amount = item.get("mode", "scale"), item.get("amount")
        if mode not in ("value", "scale"):
            raise GraphError(f"interventions[{i}].mode must be 'value' or 'scale'", field="interventions")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount) \
                or abs(amount) > 10_000:
            raise GraphError(f"interventions[{i}].amount must be a number within ±10000",
                             field="interventions")
        activation = float(node.get("activation") or 0.0)
        value = float(amount) if mode == "value" else float(amount) * activation
        layer, position, feature = coords
        out.append({"layer": layer, "position": position, "feature": feature, "value": value})
    for name, value, hi in (("top_k", top_k, 50), ("max_new_tokens", max_new_tokens, 64)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
            raise GraphError(f"{name} must be an integer between 1 and {hi}", field=name)
    return {"source_set": graph.scan, "prompt": graph.prompt, "chat": graph.chat, "interventions": out,
            "top_k": top_k, "max_new_tokens": max_new_tokens}


def run_intervention(*, graph: Graph, interventions: list[dict[str, Any]], top_k: int = 10,
                     max_new_tokens: int = 12, timeout: float = 180.0) -> dict[str, Any]:
    """Send the intervention to the model's inference worker and return its reply (before/after top
    logits, default and steered continuations). Raises inference.client.InferenceError."""
    from inference import client as inference  # noqa: PLC0415

    payload = intervention_payload(graph=graph, interventions=interventions, top_k=top_k,
                                   max_new_tokens=max_new_tokens)
    result = inference.run_inference(graph.model_id, "graph_intervene", payload, timeout=timeout)
    return {"payload": payload, **result}
