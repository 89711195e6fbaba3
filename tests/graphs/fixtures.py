"""Attribution graphs in Neuronpedia's JSON format for tests and the page benchmark.

`make_graph` follows circuit-tracer 0.5's create_graph_files exactly (node ids, jsNodeIds, Cantor-paired
`feature`, layer strings, logit layer n_layers + 1, error ids `0_{layer}_{pos}`, embedding ids
`E_{vocab}_{pos}`, clerps of logit nodes); tests/graphs/test_format.py checks it against circuit-tracer's
own pydantic models when that package is installed. Weights, influences and activations are random
but shaped like real graphs: influence grows with distance from the logits, most links are small.
"""

from __future__ import annotations

import random
from typing import Any

PROMPT = "The capital of France is"
TOKENS = ["The", " capital", " of", " France", " is"]
TOKEN_IDS = [504, 3575, 282, 4649, 314]
LOGITS = [(" Paris", 7042, 0.62), (" the", 260, 0.11), (" a", 253, 0.05), (" located", 3853, 0.03)]


def cantor(x: int, y: int) -> int:
    return (x + y) * (x + y + 1) // 2 + y


def feature_node(layer: int, pos: int, feat: int, influence: float, activation: float) -> dict[str, Any]:
    return {"node_id": f"{layer}_{feat}_{pos}", "feature": cantor(layer, feat), "layer": str(layer),
            "ctx_idx": pos, "feature_type": "cross layer transcoder", "token_prob": 0.0,
            "is_target_logit": False, "run_idx": 0, "reverse_ctx_idx": 0, "jsNodeId": f"{layer}_{feat}-0",
            "clerp": "", "influence": influence, "activation": activation}


def error_node(layer: int, pos: int, influence: float) -> dict[str, Any]:
    return {"node_id": f"0_{layer}_{pos}", "feature": -1, "layer": str(layer), "ctx_idx": pos,
            "feature_type": "mlp reconstruction error", "token_prob": 0.0, "is_target_logit": False,
            "run_idx": 0, "reverse_ctx_idx": 0, "jsNodeId": f"{layer}_{pos}-0", "clerp": "",
            "influence": influence, "activation": None}


def token_node(pos: int, vocab: int, influence: float) -> dict[str, Any]:
    return {"node_id": f"E_{vocab}_{pos}", "feature": pos, "layer": "E", "ctx_idx": pos,
            "feature_type": "embedding", "token_prob": 0.0, "is_target_logit": False, "run_idx": 0,
            "reverse_ctx_idx": 0, "jsNodeId": f"E_{vocab}-{pos}", "clerp": "", "influence": influence,
            "activation": None}


def logit_node(pos: int, vocab: int, token: str, prob: float, n_layers: int, target: bool) -> dict[str, Any]:
    layer = str(n_layers + 1)
    return {"node_id": f"{layer}_{vocab}_{pos}", "feature": vocab, "layer": layer, "ctx_idx": pos,
            "feature_type": "logit", "token_prob": prob, "is_target_logit": target, "run_idx": 0,
            "reverse_ctx_idx": 0, "jsNodeId": f"L_{vocab}-{pos}", "clerp": f'Output "{token}" (p={prob:.3f})',
            "influence": None, "activation": None}


def make_graph(*, slug: str = "capital-france", scan: str = "plt-demo", n_layers: int = 30,
               tokens: list[str] | None = None, n_features: int = 60, n_links: int = 400,
               d_transcoder: int = 2304, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    tokens = tokens or TOKENS
    n_pos = len(tokens)
    token_ids = TOKEN_IDS if tokens == TOKENS else [1000 + i for i in range(n_pos)]
    nodes: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(nodes) < n_features:
        layer = rng.randrange(n_layers)
        pos = rng.choice([n_pos - 1] * 3 + list(range(n_pos)))  # most features at the last token
        feat = rng.randrange(d_transcoder)
        influence = round(0.05 + 0.75 * (1 - layer / n_layers) * rng.random(), 4)
        node = feature_node(layer, pos, feat, influence=influence,
                            activation=round(rng.uniform(0.5, 12.0), 3))
        if node["node_id"] not in seen:
            seen.add(node["node_id"])
            nodes.append(node)
    for layer in range(0, n_layers, 3):
        for pos in range(n_pos):
            if rng.random() < 0.35:
                nodes.append(error_node(layer, pos, influence=round(rng.uniform(0.1, 0.8), 4)))
    for pos in range(n_pos):
        nodes.append(token_node(pos, token_ids[pos], influence=round(rng.uniform(0.05, 0.6), 4)))
    for i, (token, vocab, prob) in enumerate(LOGITS):
        nodes.append(logit_node(n_pos - 1, vocab, token, prob, n_layers, target=i == 0))

    def rank(node: dict[str, Any]) -> float:
        if node["feature_type"] == "embedding":
            return -1
        if node["feature_type"] == "logit":
            return n_layers + 1
        return int(node["layer"])

    links: list[dict[str, Any]] = []
    pairs: set[tuple[str, str]] = set()
    tries = 0
    while len(links) < n_links and tries < n_links * 50:
        tries += 1
        a, b = rng.choice(nodes), rng.choice(nodes)
        if not (rank(a) < rank(b) and a["ctx_idx"] <= b["ctx_idx"]):
            continue
        if b["feature_type"] in ("embedding", "mlp reconstruction error") or a["feature_type"] == "logit":
            continue
        if (a["node_id"], b["node_id"]) in pairs:
            continue
        pairs.add((a["node_id"], b["node_id"]))
        sign = 1 if rng.random() < 0.75 else -1
        links.append({"source": a["node_id"], "target": b["node_id"],
                      "weight": round(sign * rng.lognormvariate(-1.5, 1.0), 5)})
    # the target logit gets strong inputs from the last-token features, so the graph has a visible circuit
    target = nodes[-len(LOGITS)]["node_id"]
    for node in nodes[:n_features]:
        late = node["ctx_idx"] == n_pos - 1 and int(node["layer"]) > n_layers // 2
        if late and (node["node_id"], target) not in pairs:
            pairs.add((node["node_id"], target))
            links.append({"source": node["node_id"], "target": target, "weight": round(rng.uniform(1, 6), 4)})
    connected = {x for link in links for x in (link["source"], link["target"])}
    nodes = [n for n in nodes if n["node_id"] in connected or n["feature_type"] in ("embedding", "logit")]
    return {
        "metadata": {"slug": slug, "scan": scan, "transcoder_list": [], "prompt_tokens": tokens,
                     "prompt": "".join(tokens), "node_threshold": 0.8, "schema_version": 1,
                     "generation_settings": {"max_n_logits": 10, "desired_logit_prob": 0.95,
                                             "batch_size": 64, "max_feature_nodes": 2000},
                     "pruning_settings": {"node_threshold": 0.8, "edge_threshold": 0.98}},
        "qParams": {"pinnedIds": [], "supernodes": [], "linkType": "both", "clickedId": "", "sg_pos": ""},
        "nodes": nodes, "links": links,
    }
