"""Attribution graphs and feature interventions with circuit-tracer, on the worker's own model.

- ``build_replacement_model``: circuit-tracer's ``TransformerLensReplacementModel`` from the worker's
  HookedTransformer config + a ``TranscoderSet`` (weights copied from the base model, not reloaded).
- ``generate_graph``: ``circuit_tracer.attribution.attribute`` then circuit-tracer's own pruning and
  JSON model (``prune_graph``, ``create_nodes``, ``create_used_nodes_and_edges``, ``build_model`` from
  ``circuit_tracer.utils.create_graph_files``) → the dict Neuronpedia's graph viewer reads. We call the
  pieces instead of ``create_graph_files`` itself because that one writes files and reloads the
  tokenizer from the HF hub by name.
- ``intervene``: top next-token logits before/after setting features, and greedy continuations with
  and without (``feature_intervention`` / ``feature_intervention_generate``).

Pure library code (no Django).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from inference_worker.protocol import InterventionReply, TokenProb
from inference_worker.transcoders import LoadedTranscoderSet, shim_circuit_tracer

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class GraphParams:
    prompt: str
    chat: bool = False
    max_n_logits: int = 10
    desired_logit_prob: float = 0.95
    node_threshold: float = 0.8
    edge_threshold: float = 0.98
    max_feature_nodes: int = 2000
    batch_size: int = 64

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GraphParams:
        if not isinstance(d.get("prompt"), str) or not d["prompt"].strip():
            raise ValueError("prompt must be a non-empty string")
        p = cls(prompt=d["prompt"], chat=bool(d.get("chat", False)),
                max_n_logits=int(d.get("max_n_logits", 10)),
                desired_logit_prob=float(d.get("desired_logit_prob", 0.95)),
                node_threshold=float(d.get("node_threshold", 0.8)),
                edge_threshold=float(d.get("edge_threshold", 0.98)),
                max_feature_nodes=int(d.get("max_feature_nodes", 2000)),
                batch_size=int(d.get("batch_size", 64)))
        if not 1 <= p.max_n_logits <= 50:
            raise ValueError("max_n_logits must be in [1, 50]")
        if not 0 < p.desired_logit_prob <= 1:
            raise ValueError("desired_logit_prob must be in (0, 1]")
        for name in ("node_threshold", "edge_threshold"):
            if not 0 < getattr(p, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1]")
        if not 1 <= p.max_feature_nodes <= 20000:
            raise ValueError("max_feature_nodes must be in [1, 20000]")
        if not 1 <= p.batch_size <= 1024:
            raise ValueError("batch_size must be in [1, 1024]")
        return p


def prompt_text(tokenizer: Any, prompt: str, chat: bool) -> str:
    """The text to attribute: the prompt itself, or the model's chat template around it as a user
    turn with the assistant's turn opened."""
    if not chat:
        return prompt
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("this model has no chat template")
    return str(tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True))


def check_prompt_length(rm: Any, text: str, token_limit: int | None) -> Any:
    """The prompt's tokens as circuit-tracer sees them (with its special token); ValueError when longer
    than ``token_limit``."""
    tokens = rm.ensure_tokenized(text)
    n = int(tokens.shape[-1])
    if token_limit is not None and n > token_limit:
        raise ValueError(f"the prompt is too long: {n} tokens, at most {token_limit} for graphs")
    return tokens


def build_replacement_model(base: Any, tset: LoadedTranscoderSet) -> Any:
    shim_circuit_tracer()
    from circuit_tracer.replacement_model.replacement_model_transformerlens import (  # noqa: PLC0415
        TransformerLensReplacementModel,
    )

    if tset.n_layers != base.cfg.n_layers:
        raise ValueError(f"transcoder set {tset.name} has {tset.n_layers} layers, the model "
                         f"{base.cfg.n_layers}")
    rm = TransformerLensReplacementModel.from_config(base.cfg, tset.ct_set, tokenizer=base.tokenizer)
    wanted = set(rm.state_dict())
    state = {}
    for key, value in base.state_dict().items():
        for cand in (key, key.replace(".mlp.", ".mlp.old_mlp."),
                     key.replace("unembed.", "unembed.old_unembed.")):
            if cand in wanted:
                state[cand] = value
                break
    missing, _unexpected = rm.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith("transcoders.") and "hook" not in k]
    if bad:
        raise RuntimeError(f"replacement model lacks base weights: {bad[:5]}")
    rm.eval()
    return rm


class _PhaseLog(logging.Handler):
    """circuit-tracer logs its phases on the "attribution" logger: turn them into progress."""

    PHASES = ("Phase 0", "Phase 1", "Phase 2", "Phase 3", "Phase 4", "Feature attributions completed",
              "Attribution completed")

    def __init__(self, progress: Progress) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        for i, phase in enumerate(self.PHASES):
            if msg.startswith(phase):
                self.progress(i, len(self.PHASES) + 1, msg)


def run_attribution(rm: Any, text: str, params: GraphParams, progress: Progress | None = None) -> Any:
    """circuit-tracer's ``attribute`` with its phase messages forwarded to ``progress``."""
    shim_circuit_tracer()
    from circuit_tracer.attribution.attribute import attribute  # noqa: PLC0415

    logger = logging.getLogger("attribution")
    handler = _PhaseLog(progress) if progress else None
    if handler:
        logger.addHandler(handler)
    # attribute(verbose=True) only adds its own handler and INFO level when the logger has none; we
    # keep verbose off (no tqdm/stream output) and raise the level around the call ourselves
    old_level = logger.level
    try:
        if handler:
            logger.setLevel(logging.INFO)
            _keep_info_level(logger)
        return attribute(text, rm, max_n_logits=params.max_n_logits,
                         desired_logit_prob=params.desired_logit_prob, batch_size=params.batch_size,
                         max_feature_nodes=params.max_feature_nodes, verbose=False)
    finally:
        if handler:
            logger.removeHandler(handler)
            _restore_level(logger)
        logger.setLevel(old_level)


def _keep_info_level(logger: logging.Logger) -> None:
    """``attribute`` sets WARNING when verbose is off; pin INFO while our handler listens."""
    if not hasattr(logger, "_np_set_level"):
        logger._np_set_level = logger.setLevel  # type: ignore[attr-defined]
        logger.setLevel = _ignore_level  # type: ignore[method-assign]


def _ignore_level(level: int | str) -> None:
    """Stands in for ``Logger.setLevel`` while pinned."""


def _restore_level(logger: logging.Logger) -> None:
    if hasattr(logger, "_np_set_level"):
        logger.setLevel = logger._np_set_level  # type: ignore[method-assign]
        del logger._np_set_level


def graph_to_json(graph: Any, tokenizer: Any, *, slug: str, scan: str, node_threshold: float,
                  edge_threshold: float) -> dict[str, Any]:
    """Neuronpedia's graph JSON, built with circuit-tracer's own functions (as create_graph_files)."""
    shim_circuit_tracer()
    from circuit_tracer.graph import prune_graph  # noqa: PLC0415
    from circuit_tracer.utils.create_graph_files import (  # noqa: PLC0415
        build_model,
        create_nodes,
        create_used_nodes_and_edges,
    )

    graph.to("cuda" if torch.cuda.is_available() else "cpu")
    node_mask, edge_mask, cumulative = (t.cpu() for t in prune_graph(graph, node_threshold,
                                                                      edge_threshold))
    graph.to("cpu")
    nodes = create_nodes(graph, node_mask, tokenizer, cumulative)
    used_nodes, used_edges = create_used_nodes_and_edges(graph, nodes, edge_mask)
    model = build_model(graph, used_nodes, used_edges, slug, scan, node_threshold, tokenizer)
    graph_json: dict[str, Any] = model.model_dump()
    return graph_json


def generate_graph(rm: Any, params: GraphParams, *, slug: str, scan: str, model_id: str,
                   progress: Progress | None = None, token_limit: int | None = None
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(graph JSON, timing/size info)."""
    t0 = time.perf_counter()
    text = prompt_text(rm.tokenizer, params.prompt, params.chat)
    check_prompt_length(rm, text, token_limit)
    graph = run_attribution(rm, text, params, progress)
    t1 = time.perf_counter()
    if progress:
        progress(7, 8, "pruning and writing the graph JSON")
    data = graph_to_json(graph, rm.tokenizer, slug=slug, scan=scan,
                         node_threshold=params.node_threshold, edge_threshold=params.edge_threshold)
    t2 = time.perf_counter()
    settings = {**asdict(params), "model_id": model_id, "source_set": scan}
    data["metadata"]["generation_settings"] = settings
    info = {"attribution_s": round(t1 - t0, 2), "json_s": round(t2 - t1, 2),
            "n_tokens": len(graph.input_tokens), "active_features": int(len(graph.active_features)),
            "selected_features": int(len(graph.selected_features)), "nodes": len(data["nodes"]),
            "links": len(data["links"])}
    data["metadata"].setdefault("info", {})
    if isinstance(data["metadata"]["info"], dict):
        data["metadata"]["info"].update({"generator": {"name": "neuronpedia-django worker",
                                                       "circuit_tracer": _ct_version()},
                                         **info})
    return data, info


def _ct_version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version("circuit-tracer")


# ---------------------------------------------------------------- interventions


@dataclass(frozen=True)
class Intervention:
    layer: int
    position: int
    feature: int
    value: float


def parse_interventions(items: Any, n_layers: int, d_transcoder: int) -> list[Intervention]:
    if not isinstance(items, list) or not items:
        raise ValueError("interventions must be a non-empty list")
    if len(items) > 256:
        raise ValueError("at most 256 interventions")
    out = []
    for it in items:
        if not isinstance(it, dict):
            raise ValueError("each intervention is an object {layer, position, feature, value}")
        iv = Intervention(int(it["layer"]), int(it["position"]), int(it["feature"]),
                          float(it["value"]))
        if not 0 <= iv.layer < n_layers:
            raise ValueError(f"layer {iv.layer} out of range [0, {n_layers})")
        if not 0 <= iv.feature < d_transcoder:
            raise ValueError(f"feature {iv.feature} out of range [0, {d_transcoder})")
        if not torch.isfinite(torch.tensor(iv.value)) or abs(iv.value) > 1e6:
            raise ValueError("value must be a finite number with |value| <= 1e6")
        out.append(iv)
    return out


def _greedy(next_logits: Callable[[torch.Tensor], torch.Tensor], tokens: torch.Tensor, n: int,
            eos: int | None, check: Callable[[], None] | None = None) -> list[int]:
    """Greedy continuation by full forwards (no KV cache: the interventions at prompt positions
    then apply exactly as in ``feature_intervention`` at every step). ``check`` may raise to stop."""
    out: list[int] = []
    for _ in range(n):
        if check is not None:
            check()
        nxt = int(next_logits(tokens).argmax())
        out.append(nxt)
        if nxt == eos:
            break
        tokens = torch.cat([tokens, torch.tensor([nxt], device=tokens.device)])
    return out


def _top(logits: torch.Tensor, tokenizer: Any, k: int) -> list[TokenProb]:
    probs = logits.float().softmax(-1)
    vals, idx = logits.float().topk(k)
    return [{"token": tokenizer.decode([int(i)]), "token_id": int(i), "prob": float(probs[i]),
             "logit": float(v)} for v, i in zip(vals, idx, strict=True)]


@torch.no_grad()
def intervene(rm: Any, prompt: str, chat: bool, interventions: list[Intervention], top_k: int = 10,
              max_new_tokens: int = 12, token_limit: int | None = None,
              check: Callable[[], None] | None = None) -> InterventionReply:
    """Set features at positions to values; the graph's token positions include the special token
    circuit-tracer prepends (``ensure_tokenized``), so positions match graph nodes' ``ctx_idx``."""
    if not 1 <= top_k <= 100:
        raise ValueError("top_k must be in [1, 100]")
    if not 0 <= max_new_tokens <= 128:
        raise ValueError("max_new_tokens must be in [0, 128]")
    text = prompt_text(rm.tokenizer, prompt, chat)
    tokens = check_prompt_length(rm, text, token_limit)
    n_pos = int(tokens.shape[0])
    for iv in interventions:
        if not 0 <= iv.position < n_pos:
            raise ValueError(f"position {iv.position} out of range [0, {n_pos})")
    ivs = [(iv.layer, iv.position, iv.feature, iv.value) for iv in interventions]
    before = rm(tokens[None])[0, -1]
    # circuit-tracer wants 1-D token ids here (it takes n_pos from size(0))
    after, _ = rm.feature_intervention(tokens, ivs, freeze_attention=False,
                                       return_activations=False)
    after = after.reshape(-1, after.shape[-1])[-1]
    out: InterventionReply = {
        "before": _top(before, rm.tokenizer, top_k), "after": _top(after, rm.tokenizer, top_k),
        "default_text": "", "steered_text": "", "n_tokens": n_pos}
    if max_new_tokens:
        eos = rm.tokenizer.eos_token_id
        out["default_text"] = rm.tokenizer.decode(
            _greedy(lambda t: rm(t[None])[0, -1], tokens, max_new_tokens, eos, check))
        out["steered_text"] = rm.tokenizer.decode(_greedy(
            lambda t: rm.feature_intervention(t, ivs, freeze_attention=False,
                                              return_activations=False)[0].reshape(
                -1, rm.cfg.d_vocab)[-1], tokens, max_new_tokens, eos, check))
    return out
