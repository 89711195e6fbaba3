"""/api/graph/*: Neuronpedia's attribution-graph routes (generate, metadata, list, delete) plus upload,
download of the graph JSON, and interventions. Thin: validate, check visibility/ownership, call a
service or a selector. Errors are JSON `{"message"}` with a 4xx status."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from features.api.permissions import HasApiKey, can_view_model
from features.models import Model, Visibility
from graphs import selectors, services
from graphs.format import MAX_UPLOAD_BYTES
from graphs.services import GenerationParams, GraphError
from neuronpedia.api import (
    fields,
    schema,  # noqa: F401  (registers the x-api-key security scheme)
)
from neuronpedia.api.schema import JSON_ONLY, errors

TAGS = ["graphs"]
B = GenerationParams.BOUNDS


class GraphGenerateInSerializer(serializers.Serializer):
    prompt = fields.CharField(max_length=10_000, trim_whitespace=False,
                              help_text="the prompt to explain the next token of")
    modelId = fields.RegexField(r"^[a-zA-Z0-9_-]+$", max_length=128)
    sourceSetName = fields.RegexField(r"^[a-zA-Z0-9_-]+$", max_length=128, required=False,
                                      help_text="transcoder source set (default plt-demo)")
    slug = fields.RegexField(r"^[a-z0-9_-]+$", max_length=128, required=False,
                             help_text="unique per model; made from the prompt when left out")
    chat = fields.BooleanField(required=False, default=False,
                               help_text="apply the model's chat template to the prompt")
    maxNLogits = fields.IntegerField(required=False, min_value=B["max_n_logits"][0],
                                     max_value=B["max_n_logits"][1], default=10)
    desiredLogitProb = fields.FloatField(required=False, min_value=B["desired_logit_prob"][0],
                                         max_value=B["desired_logit_prob"][1], default=0.95)
    nodeThreshold = fields.FloatField(required=False, min_value=B["node_threshold"][0],
                                      max_value=B["node_threshold"][1], default=0.8)
    edgeThreshold = fields.FloatField(required=False, min_value=B["edge_threshold"][0],
                                      max_value=B["edge_threshold"][1], default=0.98)
    maxFeatureNodes = fields.IntegerField(required=False, min_value=B["max_feature_nodes"][0],
                                          max_value=B["max_feature_nodes"][1], default=2000)
    batchSize = fields.IntegerField(required=False, min_value=B["batch_size"][0],
                                    max_value=B["batch_size"][1], default=64)
    visibility = serializers.ChoiceField(Visibility.choices, required=False, default=Visibility.PUBLIC)

    def params(self) -> GenerationParams:
        d = self.validated_data
        return GenerationParams(max_n_logits=d["maxNLogits"], desired_logit_prob=d["desiredLogitProb"],
                                node_threshold=d["nodeThreshold"], edge_threshold=d["edgeThreshold"],
                                max_feature_nodes=d["maxFeatureNodes"], batch_size=d["batchSize"])


class GraphKeyInSerializer(serializers.Serializer):
    modelId = fields.CharField(max_length=128)
    slug = fields.CharField(max_length=128)


class InterventionItemSerializer(serializers.Serializer):
    node_id = fields.CharField(max_length=200)
    mode = serializers.ChoiceField(["value", "scale"], default="scale",
                                   help_text="value: set the activation; scale: k x the node's activation")
    amount = fields.FloatField(min_value=-10_000, max_value=10_000)


class GraphInterveneInSerializer(GraphKeyInSerializer):
    interventions = InterventionItemSerializer(many=True, min_length=1, max_length=services.MAX_INTERVENTIONS)
    topK = fields.IntegerField(required=False, default=10, min_value=1, max_value=50)
    maxNewTokens = fields.IntegerField(required=False, default=12, min_value=1, max_value=64)


class GraphUploadInSerializer(serializers.Serializer):
    modelId = fields.CharField(max_length=128)
    slug = fields.RegexField(r"^[a-z0-9_-]+$", max_length=128, required=False,
                             help_text="defaults to the graph's metadata.slug")
    visibility = serializers.ChoiceField(Visibility.choices, required=False, default=Visibility.PUBLIC)
    graph = serializers.DictField(help_text="the graph in Neuronpedia's JSON format")


GRAPH_META = inline_serializer("GraphMetadata", {
    "id": serializers.IntegerField(), "modelId": serializers.CharField(),
    "sourceSetName": serializers.CharField(allow_null=True), "slug": serializers.CharField(),
    "prompt": serializers.CharField(), "promptTokens": serializers.ListField(child=serializers.CharField()),
    "status": serializers.ChoiceField(["PENDING", "READY", "FAILED"]), "url": serializers.CharField(),
    "dataUrl": serializers.CharField(), "numNodes": serializers.IntegerField(),
    "numLinks": serializers.IntegerField(), "generationSettings": serializers.DictField(),
    "visibility": serializers.CharField(), "jobId": serializers.IntegerField(allow_null=True),
    "progress": serializers.DictField(allow_null=True)})
GRAPH_META_LIST = serializers.ListSerializer(child=GRAPH_META)  # list-owned answers a JSON array of them


def _validated(cls: type[serializers.Serializer], request: Request) -> serializers.Serializer:
    serializer = cls(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer


def _model(user: Any, model_id: str) -> Model:
    model = Model.objects.filter(id=model_id).first()
    if model is None or not can_view_model(user, model):
        raise exceptions.NotFound(f"model {model_id} not found")
    return model


def _refuse(exc: GraphError) -> Response:
    body: dict[str, Any] = {"message": str(exc)}
    if exc.field:
        body["errors"] = {exc.field: [str(exc)]}
    return Response(body, status=exc.status)


@extend_schema(tags=TAGS, operation_id="graph_generate", request=GraphGenerateInSerializer,
               responses={200: OpenApiResponse(GRAPH_META, description="the same prompt and parameters "
                                               "were generated before: the stored graph (the cache)"),
                          202: OpenApiResponse(GRAPH_META, description="generation queued on the model's "
                                               "inference worker; poll `url` or /api/graph/{modelId}/{slug}"),
                          **errors()})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
def generate(request: Request) -> Response:
    """Generate an attribution graph for a prompt with circuit-tracer on the model's transcoders. A job
    on the model's inference queue; the same prompt and parameters return the stored graph."""
    serializer = _validated(GraphGenerateInSerializer, request)
    d = serializer.validated_data
    model = _model(request.user, d["modelId"])
    try:
        graph, created = services.request_graph(
            model=model, prompt=d["prompt"], params=serializer.params(), chat=d["chat"],
            slug=d.get("slug"), source_set=d.get("sourceSetName") or services.DEFAULT_SOURCE_SET,
            user=request.user, visibility=d["visibility"])
    except GraphError as exc:
        return _refuse(exc)
    body = selectors.metadata_dict(graph, request)
    body["message"] = "Graph generation queued" if created else "Graph found in the cache"
    return Response(body, status=202 if created else 200)


@extend_schema(tags=TAGS, operation_id="graph_get", responses={200: GRAPH_META, **errors(body=False)})
@api_view(["GET"])
@permission_classes([AllowAny])
def detail(request: Request, model_id: str, slug: str) -> Response:
    """A graph's metadata (Neuronpedia's GraphMetadata), with its generation status and progress."""
    graph = selectors.get_graph(request.user, model_id, slug, with_data=False)
    return Response(selectors.metadata_dict(graph, request))


@extend_schema(tags=TAGS, operation_id="graph_data",
               parameters=[OpenApiParameter("download", bool, description="as an attachment")],
               responses={200: OpenApiResponse(description="the graph in Neuronpedia's JSON format "
                                               "(metadata, qParams, nodes, links)"), **errors(body=False)})
@api_view(["GET"])
@permission_classes([AllowAny])
def data(request: Request, model_id: str, slug: str) -> HttpResponse:
    """The whole graph as Neuronpedia's graph JSON (export / download)."""
    graph = selectors.get_graph(request.user, model_id, slug)
    if selectors.effective_status(graph) != "READY":
        state = selectors.effective_status(graph)
        return Response({"message": f"graph {model_id}/{slug} is not ready ({state})"},
                        status=409)
    response = HttpResponse(graph.graph_json_bytes(), content_type="application/json")
    if request.query_params.get("download") in ("1", "true"):
        response["Content-Disposition"] = f'attachment; filename="{graph.model_id}-{graph.slug}.json"'
    return response


@extend_schema(tags=TAGS, operation_id="graph_feature_labels",
               responses={200: OpenApiResponse(description="{node_id: best explanation} for the graph's "
                                               "transcoder feature nodes that have one"),
                          **errors(body=False)})
@api_view(["GET"])
@permission_classes([AllowAny])
def labels(request: Request, model_id: str, slug: str) -> Response:
    """Explanations of the graph's feature nodes (the viewer's default node labels)."""
    graph = selectors.get_graph(request.user, model_id, slug)
    return Response(selectors.feature_labels(graph))


@extend_schema(tags=TAGS, operation_id="graph_list",
               parameters=[OpenApiParameter("modelId", str, required=True)],
               responses={200: OpenApiResponse(GRAPH_META, description="a list of GraphMetadata"),
                          **errors(body=False)})
@api_view(["GET"])
@permission_classes([AllowAny])
def list_graphs(request: Request) -> Response:
    """A model's public graphs (and the caller's own), newest first, at most 200."""
    model_id = request.query_params.get("modelId", "")
    model = _model(request.user, model_id)
    rows = selectors.listed_graphs(request.user, model.id)[:200]
    return Response([selectors.metadata_dict(g, request) for g in rows])


@extend_schema(tags=TAGS, operation_id="graph_list_owned", request=None,
               responses={200: GRAPH_META_LIST, **errors(auth=True, missing=False, body=False)})
@api_view(["POST"])
@permission_classes([HasApiKey])
def list_owned(request: Request) -> Response:
    """The caller's graphs, newest first (Neuronpedia: POST /api/graph/list-owned)."""
    rows = selectors.owned_graphs(request.user)[:1000]
    return Response([selectors.metadata_dict(g, request) for g in rows])


@extend_schema(tags=TAGS, operation_id="graph_delete", request=GraphKeyInSerializer,
               responses={200: inline_serializer("GraphDeleted", {"message": serializers.CharField()}),
                          **errors(auth=True, owner=True)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def delete(request: Request) -> Response:
    """Delete a graph you created."""
    d = _validated(GraphKeyInSerializer, request).validated_data
    graph = selectors.get_graph(request.user, d["modelId"], d["slug"], with_data=False)
    try:
        services.delete_graph(graph=graph, user=request.user)
    except GraphError as exc:
        return _refuse(exc)
    return Response({"message": "Graph deleted"})


@extend_schema(tags=TAGS, operation_id="graph_upload", request=GraphUploadInSerializer,
               responses={201: GRAPH_META, 413: OpenApiResponse(description="body over the size limit"),
                          **errors(auth=True)})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([HasApiKey])
def upload(request: Request) -> Response:
    """Store a graph made elsewhere (Neuronpedia's graph JSON, validated strictly, at most 40 MB).
    Neuronpedia does this in two steps through S3 (signed-put, save-to-db); here it is one request."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_UPLOAD_BYTES:
        return Response({"message": f"graph upload is larger than {MAX_UPLOAD_BYTES // 2**20} MB"},
                        status=413)
    if request.content_type != "application/json":
        raise exceptions.UnsupportedMediaType(request.content_type)
    # read the body here: DRF's JSON parsing goes through request.body, which Django caps at
    # DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), far below a real graph
    raw = request._request.read(MAX_UPLOAD_BYTES + 1)
    if len(raw) > MAX_UPLOAD_BYTES:
        return Response({"message": f"graph upload is larger than {MAX_UPLOAD_BYTES // 2**20} MB"},
                        status=413)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return Response({"message": f"JSON parse error: {str(exc)[:200]}"}, status=400)
    serializer = GraphUploadInSerializer(data=body)
    serializer.is_valid(raise_exception=True)
    d = serializer.validated_data
    model = _model(request.user, d["modelId"])
    try:
        graph = services.import_graph(model=model, data=d["graph"], user=request.user,
                                      visibility=d["visibility"], slug=d.get("slug"))
    except GraphError as exc:
        return _refuse(exc)
    return Response(selectors.metadata_dict(graph, request), status=201)


@extend_schema(tags=TAGS, operation_id="graph_intervene", request=GraphInterveneInSerializer,
               responses={200: inline_serializer("GraphIntervention", {
                   "before": serializers.ListField(child=serializers.DictField()),
                   "after": serializers.ListField(child=serializers.DictField()),
                   "default_text": serializers.CharField(), "steered_text": serializers.CharField(),
                   "payload": serializers.DictField()}),
                   503: OpenApiResponse(description="no inference worker serves the model"),
                   504: OpenApiResponse(description="the worker did not answer in time"), **errors()})
@api_view(["POST"])
@parser_classes(JSON_ONLY)
@permission_classes([AllowAny])
def intervene(request: Request) -> Response:
    """Set graph feature nodes to a value or scale them (x k; 0 ablates) and get the top next-token
    logits before/after and a greedy continuation with and without the intervention."""
    from inference.client import InferenceError  # noqa: PLC0415

    d = _validated(GraphInterveneInSerializer, request).validated_data
    graph = selectors.get_graph(request.user, d["modelId"], d["slug"])
    try:
        result = services.run_intervention(graph=graph, interventions=[dict(i) for i in d["interventions"]],
                                           top_k=d["topK"], max_new_tokens=d["maxNewTokens"])
    except GraphError as exc:
        return _refuse(exc)
    except InferenceError as exc:
        return Response({"message": str(exc)}, status=exc.status)
    return Response(result)
