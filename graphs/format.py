"""Neuronpedia's attribution-graph JSON (what circuit-tracer's create_graph_files writes): strict checks.

The rules follow Neuronpedia's published schema (apps/webapp/app/api/graph/graph-schema.json): the four
top-level keys, metadata with slug / scan / prompt / prompt_tokens, nodes with node_id, feature, layer,
ctx_idx, feature_type, jsNodeId, clerp, and links with source, target, weight. On top of the schema we
refuse what would break the viewer: duplicate node ids, links to unknown nodes, positions outside the
prompt, non-finite numbers, and graphs beyond the size limits below.
"""

from __future__ import annotations

import math
import re
from typing import Any

MAX_UPLOAD_BYTES = 40 * 1024 * 1024
MAX_NODES = 20_000
MAX_LINKS = 400_000
MAX_PROMPT_TOKENS = 1_024
MAX_PROMPT_CHARS = 20_000
MAX_STRING = 2_000
SLUG_RE = re.compile(r"^[a-z0-9_-]{1,128}$")

FEATURE_TYPES = {"cross layer transcoder", "mlp reconstruction error", "embedding", "logit",
                 "lorsa", "lorsa error", "unexplored node"}
NODE_REQUIRED = ("node_id", "feature", "layer", "ctx_idx", "feature_type", "jsNodeId", "clerp")


class GraphFormatError(ValueError):
    """The JSON is not a graph in Neuronpedia's format; the message says where and why."""


def _fail(path: str, message: str) -> None:
    raise GraphFormatError(f"{path}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _string(value: Any, path: str, *, max_len: int = MAX_STRING) -> str:
    if not isinstance(value, str):
        _fail(path, "must be a string")
    if len(value) > max_len:
        _fail(path, f"longer than {max_len} characters")
    return value


def validate_graph(data: Any) -> dict[str, Any]:
    """Check `data` and return it unchanged; raise GraphFormatError with the first problem found."""
    if not isinstance(data, dict):
        _fail("root", "must be a JSON object")
    for key in ("metadata", "qParams", "nodes", "links"):
        if key not in data:
            _fail("root", f"missing required property '{key}'")
    _validate_metadata(data["metadata"])
    _validate_qparams(data["qParams"])
    n_tokens = len(data["metadata"]["prompt_tokens"])
    ids = _validate_nodes(data["nodes"], n_tokens)
    _validate_links(data["links"], ids)
    return data


def _validate_metadata(meta: Any) -> None:
    if not isinstance(meta, dict):
        _fail("/metadata", "must be an object")
    for key in ("slug", "scan", "prompt_tokens", "prompt"):
        if key not in meta:
            _fail("/metadata", f"missing required property '{key}'")
    _string(meta["slug"], "/metadata/slug", max_len=128)
    _string(meta["scan"], "/metadata/scan", max_len=200)
    _string(meta["prompt"], "/metadata/prompt", max_len=MAX_PROMPT_CHARS)
    tokens = meta["prompt_tokens"]
    if not isinstance(tokens, list) or not tokens:
        _fail("/metadata/prompt_tokens", "must be a non-empty array of strings")
    if len(tokens) > MAX_PROMPT_TOKENS:
        _fail("/metadata/prompt_tokens", f"more than {MAX_PROMPT_TOKENS} tokens")
    for i, token in enumerate(tokens):
        _string(token, f"/metadata/prompt_tokens/{i}", max_len=200)
    for key in ("node_threshold",):
        if key in meta and meta[key] is not None and not _is_number(meta[key]):
            _fail(f"/metadata/{key}", "must be a number")
    for key in ("feature_details", "info", "generation_settings", "pruning_settings"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], dict):
            _fail(f"/metadata/{key}", "must be an object")
    version = meta.get("schema_version")
    if version is not None and not _is_int(version):
        _fail("/metadata/schema_version", "must be an integer")


def _validate_qparams(qparams: Any) -> None:
    if not isinstance(qparams, dict):
        _fail("/qParams", "must be an object")
    pinned = qparams.get("pinnedIds", [])
    if not isinstance(pinned, list) or not all(isinstance(p, str) for p in pinned):
        _fail("/qParams/pinnedIds", "must be an array of strings")
    supernodes = qparams.get("supernodes", [])
    if not isinstance(supernodes, list) or not all(
            isinstance(group, list) and all(isinstance(x, str) for x in group) for group in supernodes):
        _fail("/qParams/supernodes", "must be an array of arrays of strings")
    for key in ("linkType", "clickedId", "sg_pos"):
        if key in qparams and not isinstance(qparams[key], str):
            _fail(f"/qParams/{key}", "must be a string")


def _validate_nodes(nodes: Any, n_tokens: int) -> set[str]:
    if not isinstance(nodes, list) or not nodes:
        _fail("/nodes", "must be a non-empty array")
    if len(nodes) > MAX_NODES:
        _fail("/nodes", f"more than {MAX_NODES} nodes")
    ids: set[str] = set()
    for i, node in enumerate(nodes):
        path = f"/nodes/{i}"
        if not isinstance(node, dict):
            _fail(path, "must be an object")
        for key in NODE_REQUIRED:
            if key not in node:
                _fail(path, f"missing required property '{key}'")
        node_id = _string(node["node_id"], f"{path}/node_id", max_len=200)
        if not node_id:
            _fail(f"{path}/node_id", "must not be empty")
        if node_id in ids:
            _fail(f"{path}/node_id", f"duplicate node id {node_id!r}")
        ids.add(node_id)
        if node["feature"] is not None and not _is_int(node["feature"]):
            _fail(f"{path}/feature", "must be an integer or null")
        layer = node["layer"]
        if not (isinstance(layer, str) and len(layer) <= 16) and not _is_int(layer):
            _fail(f"{path}/layer", "must be a string or an integer")
        if not _is_int(node["ctx_idx"]) or not 0 <= node["ctx_idx"] < n_tokens:
            _fail(f"{path}/ctx_idx", f"must be an integer position in the prompt (0..{n_tokens - 1})")
        if _string(node["feature_type"], f"{path}/feature_type", max_len=64) not in FEATURE_TYPES:
            _fail(f"{path}/feature_type", f"unknown feature type {node['feature_type']!r}")
        _string(node["jsNodeId"], f"{path}/jsNodeId", max_len=200)
        _string(node["clerp"], f"{path}/clerp")
        for key in ("influence", "activation", "token_prob"):
            if key in node and node[key] is not None and not _is_number(node[key]):
                _fail(f"{path}/{key}", "must be a finite number or null")
        if "is_target_logit" in node and not isinstance(node["is_target_logit"], bool):
            _fail(f"{path}/is_target_logit", "must be a boolean")
    return ids


def _validate_links(links: Any, ids: set[str]) -> None:
    if not isinstance(links, list):
        _fail("/links", "must be an array")
    if len(links) > MAX_LINKS:
        _fail("/links", f"more than {MAX_LINKS} links")
    for i, link in enumerate(links):
        path = f"/links/{i}"
        if not isinstance(link, dict):
            _fail(path, "must be an object")
        for key in ("source", "target", "weight"):
            if key not in link:
                _fail(path, f"missing required property '{key}'")
        for key in ("source", "target"):
            if not isinstance(link[key], str):
                _fail(f"{path}/{key}", "must be a string")
            if link[key] not in ids:
                _fail(f"{path}/{key}", f"unknown node id {link[key]!r}")
        if not _is_number(link["weight"]):
            _fail(f"{path}/weight", "must be a finite number")


def feature_coordinates(node: dict[str, Any]) -> tuple[int, int, int] | None:
    """(layer, position, transcoder latent index) of a transcoder feature node, from its node_id
    (`{layer}_{feature}_{pos}` in circuit-tracer's format; `feature` itself is a Cantor pairing)."""
    if node.get("feature_type") != "cross layer transcoder":
        return None
    parts = str(node.get("node_id", "")).split("_")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    layer, feature, pos = (int(p) for p in parts)
    return layer, pos, feature
