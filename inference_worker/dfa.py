"""Direct feature attribution (DFA) for SAEs on an attention layer's output (``blocks.L.attn.hook_z``).

An attention SAE reads z, the heads' mixed values: z[t, h] = Σ_s pattern[h, t, s] · v[s, h]. Its encoder is
linear up to the bias and activation function, so a feature's pre-activation at a destination token t splits
exactly into one term per source token s:

    dfa[s] = Σ_h pattern[h, t, s] · (v[s, h] · W_enc[h, :, f])        Σ_s dfa[s] = z[t] · W_enc[:, f]

which is what Neuronpedia's dashboards show as "DFA" (SAEDashboard's definition: biases and the decoder-bias
subtraction left out). Grouped-query attention (fewer value heads than query heads) is handled by sharing
each value head among its group, as the forward pass does.
"""

# ruff: noqa: F722  (jaxtyping shape strings)
from __future__ import annotations

import re
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

_ATTN_Z = re.compile(r"^blocks\.(\d+)\.attn\.hook_z$")


def attention_layer(hook_name: str) -> int | None:
    """The block of an attention-output hook (``blocks.3.attn.hook_z`` → 3); None for any other hook."""
    m = _ATTN_Z.match(hook_name)
    return int(m.group(1)) if m else None


def supports_dfa(source: Any) -> bool:
    """DFA needs an attention-output hook and a linear encoder (an SAE with W_enc), not raw vectors."""
    w_enc = getattr(getattr(source, "sae", None), "W_enc", None)
    return attention_layer(source.hook_name) is not None and isinstance(w_enc, Tensor)


@torch.inference_mode()
def direct_feature_attribution(model: Any, source: Any, tokens: Int[Tensor, "n ctx"],
                               features: Int[Tensor, " n"], targets: Int[Tensor, " n"],
                               batch_size: int = 16) -> Float[Tensor, "n ctx"]:
    """Row i: feature features[i]'s pre-activation at token targets[i] of sequence tokens[i], split over
    the source tokens (zero after the target: causal attention). Each distinct sequence runs once, up to
    the SAE's layer, however many rows share it (a dashboard's top examples reuse few sequences)."""
    layer = attention_layer(source.hook_name)
    if layer is None:
        raise ValueError(f"DFA needs an attention-output hook (blocks.L.attn.hook_z), not {source.hook_name}")
    w_enc = source.sae.W_enc  # [n_heads * d_head, d_sae]
    n_heads, d_head = model.cfg.n_heads, model.cfg.d_head
    if w_enc.shape[0] != n_heads * d_head:
        raise ValueError(f"encoder input {w_enc.shape[0]} != n_heads * d_head = {n_heads * d_head}")
    device = w_enc.device
    out = torch.zeros(tokens.shape, dtype=torch.float32)
    if not len(tokens):
        return out
    unique, inverse = torch.unique(tokens, dim=0, return_inverse=True)
    store: dict[str, Tensor] = {}

    def keep(act: Tensor, hook: Any) -> None:
        store[hook.name.rsplit(".", 1)[-1]] = act

    hooks = [(f"blocks.{layer}.attn.hook_v", keep), (f"blocks.{layer}.attn.hook_pattern", keep)]
    for lo in range(0, len(unique), batch_size):
        hi = min(lo + batch_size, len(unique))
        model.run_with_hooks(unique[lo:hi].to(device).long(), return_type=None, stop_at_layer=layer + 1,
                             fwd_hooks=hooks)
        v, pattern = store["hook_v"].float(), store["hook_pattern"].float()  # [b,s,kv,d], [b,h,t,s]
        if v.shape[2] != n_heads:  # grouped-query attention: each value head serves a group of heads
            v = v.repeat_interleave(n_heads // v.shape[2], dim=2)
        rows = ((inverse >= lo) & (inverse < hi)).nonzero(as_tuple=True)[0]
        seq = (inverse[rows] - lo).to(pattern.device)
        weights = pattern[seq, :, targets[rows].to(pattern.device), :]  # [r, h, s]
        enc = w_enc[:, features[rows].to(device)].T.float().reshape(len(rows), n_heads, d_head)  # [r,h,d]
        out[rows] = torch.einsum("rshd,rhs,rhd->rs", v[seq], weights, enc).cpu()
    return out
