"""Feature dashboards for every feature of a source in one streaming pass (pure torch, no ORM).

For each token batch the model runs once, only up to the source's hook (``stop_at_layer``), the source
encodes the hook activations and every statistic is updated for all features at once with tensor ops
(no Python loop over features). Encoding is done a few sequences at a time so intermediate memory
stays under ``DashboardConfig.max_elements`` floats whatever d_sae is.

Per feature, the running state holds:

- the top-k sequences by their max activation (value, global token index of the max);
- exact counts of non-zero activations on a fine grid of ``fine_bins`` equal-width bins over
  (0, G], G the smallest power of two >= the max so far: when the max outgrows G, G doubles and bins
  merge pairwise, exactly (so the grid does not depend on batch order or size). The activation
  histogram and each quantile bin's share come from these counts;
- for every fine bin a bottom-``bin_size`` sketch by random key: a uniform random sample of the
  activations that fell in that bin. Merging sketches of adjacent fine bins gives a uniform sample of
  the merged bin, so at the end the ``n_bins`` equal-width intervals over (0, max] (as SAEDashboard
  makes them; edges snapped to the fine grid, width max/fine_bins at worst 2·max/fine_bins) are
  sampled without a second pass;
- the sparse non-zero activations (token, feature, value), so stored examples get their per-token
  values at the end without re-running the model.

Positions < ``skip_positions`` (BOS / SmolLM2's attention sink, shared/NOTES.md) and special tokens
(BOS/EOS/PAD) are never counted. Sampling keys are a seeded hash of (token, feature) and the state is
plain tensors, so a run resumed from a checkpoint gives the same result as an uninterrupted one.
"""

# ruff: noqa: F722  (jaxtyping shape strings)
from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from inference_worker.dfa import direct_feature_attribution, supports_dfa
from inference_worker.models import model_device
from inference_worker.saes import FwdHooks, Source, hook_layer

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

STATE_FILE = "state.pt"
STATE_VERSION = 1
_INF = float("inf")


@dataclass(frozen=True)
class DashboardConfig:
    top_k: int = 30  # examples in the "top activations" group
    n_bins: int = 5  # interval bins below the top group
    bin_size: int = 5  # examples sampled per interval bin
    fine_bins: int = 64  # resolution of the streaming histogram (and of bin edges)
    skip_positions: int = 2  # positions 0..n-1 never count (BOS / attention sink)
    ignore_special_tokens: bool = True  # BOS/EOS/PAD never count
    n_logits: int = 10  # top positive / negative logits
    logit_hist_bins: int = 40
    n_cos_sim: int = 10
    umap: bool = True
    umap_n_neighbors: int = 15
    umap_clusters: int = 0  # 0 = automatic (about sqrt(d_sae / 2), capped at 50)
    eval_sequences: int = 32  # sequences used for reconstruction and CE-loss evals
    seed: int = 0
    max_elements: int = 1 << 24  # bound on intermediate [tokens x features] tensors
    round_digits: int = 3

    def __post_init__(self) -> None:
        for name in ("top_k", "n_bins", "bin_size", "fine_bins", "max_elements", "logit_hist_bins"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("skip_positions", "n_logits", "n_cos_sim", "eval_sequences", "umap_clusters"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.fine_bins < 2 * self.n_bins:
            raise ValueError("fine_bins must be >= 2 * n_bins")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DashboardConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- token strings


_BPE_ARTIFACTS = {"Ġ": " ", "Ċ": "\n", "ĉ": "\t", "▁": " ", "č": "\r"}


def clean_token(text: str) -> str:
    """Undo byte-level BPE / SentencePiece display characters that survive decoding."""
    for raw, clean in _BPE_ARTIFACTS.items():
        text = text.replace(raw, clean)
    return text


def vocab_strings(tokenizer: Any, ids: Iterable[int]) -> dict[int, str]:
    """Cleaned display strings of token ids (decoded one by one, as a dashboard shows them)."""
    ids = sorted(set(int(i) for i in ids))
    n_vocab = len(tokenizer)
    valid = [i for i in ids if 0 <= i < n_vocab]
    decoded = tokenizer.batch_decode([[i] for i in valid]) if valid else []
    out = {i: clean_token(s) for i, s in zip(valid, decoded, strict=True)}
    out.update({i: f"<{i}>" for i in ids if i not in out})
    return out


# ---------------------------------------------------------------- state


@dataclass
class DashboardState:
    """Everything the stream has accumulated; plain tensors so it saves and loads exactly."""

    d_sae: int
    context_size: int
    cfg: DashboardConfig
    batches_done: int = 0
    n_seqs: int = 0
    n_tokens: int = 0  # counted tokens (positions not skipped)
    tokens: list[Tensor] = field(default_factory=list)  # int32 [b, ctx] per batch
    sparse: list[tuple[Tensor, Tensor, Tensor]] = field(default_factory=list)  # (tok, feat, val)
    sparse_saved: int = 0  # how many `sparse` entries are already in checkpoint segments
    evals: dict[str, Any] = field(default_factory=dict)
    eval_sum_x: Tensor | None = None  # float64 [d_in]
    t: dict[str, Tensor] = field(default_factory=dict)  # per-feature tensors

    @classmethod
    def empty(cls, d_sae: int, context_size: int, cfg: DashboardConfig) -> DashboardState:
        d, f, r, k = d_sae, cfg.fine_bins, cfg.bin_size, cfg.top_k
        t = {
            "count": torch.zeros(d, dtype=torch.int64),
            "max_act": torch.zeros(d),
            "grid": torch.zeros(d),  # G: the fine grid covers (0, G]
            "hist": torch.zeros(d, f, dtype=torch.int64),
            "res_key": torch.full((d, f, r), _INF),
            "res_val": torch.zeros(d, f, r),
            "res_tok": torch.full((d, f, r), -1, dtype=torch.int64),
            "top_val": torch.full((d, k), -_INF),
            "top_tok": torch.full((d, k), -1, dtype=torch.int64),
        }
        return cls(d_sae=d_sae, context_size=context_size, cfg=cfg, t=t)

    def all_tokens(self) -> Int[Tensor, "n_seq ctx"]:
        if not self.tokens:
            return torch.zeros(0, self.context_size, dtype=torch.int32)
        return torch.cat(self.tokens)

    # -- checkpoints: state.pt (small, rewritten) + sparse segments (append-only)

    def save(self, directory: str | Path) -> Path:
        """Write atomically; sparse records go to new append-only segment files."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("sparse-*.pt"):  # written by a run that died before its state.pt
            if int(stale.stem.split("-")[1]) >= self.sparse_saved:
                stale.unlink()
        if len(self.sparse) > self.sparse_saved:
            seg = _cat_sparse(self.sparse[self.sparse_saved:])
            segment = directory / f"sparse-{self.sparse_saved:07d}-{len(self.sparse):07d}.pt"
            _atomic_save(seg, segment)
            self.sparse_saved = len(self.sparse)
        payload = {
            "version": STATE_VERSION, "d_sae": self.d_sae, "context_size": self.context_size,
            "cfg": self.cfg.to_dict(), "batches_done": self.batches_done, "n_seqs": self.n_seqs,
            "n_tokens": self.n_tokens, "tokens": self.all_tokens(), "sparse_saved": self.sparse_saved,
            "evals": dict(self.evals), "eval_sum_x": self.eval_sum_x, "t": self.t,
        }
        path = directory / STATE_FILE
        _atomic_save(payload, path)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> DashboardState:
        directory = Path(directory)
        p = torch.load(directory / STATE_FILE, weights_only=True)
        if p["version"] != STATE_VERSION:
            raise ValueError(f"checkpoint version {p['version']} != {STATE_VERSION}")
        state = cls(d_sae=p["d_sae"], context_size=p["context_size"],
                    cfg=DashboardConfig.from_dict(p["cfg"]), batches_done=p["batches_done"],
                    n_seqs=p["n_seqs"], n_tokens=p["n_tokens"], evals=p["evals"],
                    eval_sum_x=p["eval_sum_x"], t=p["t"])
        if p["n_seqs"]:
            state.tokens = [p["tokens"]]
        segments = sorted(directory.glob("sparse-*.pt"))
        for seg in segments:
            start, end = (int(x) for x in seg.stem.split("-")[1:])
            if end <= p["sparse_saved"]:
                state.sparse.append(torch.load(seg, weights_only=True))
        state.sparse_saved = len(state.sparse)
        covered = sum(int(s.stem.split("-")[2]) - int(s.stem.split("-")[1]) for s in segments
                      if int(s.stem.split("-")[2]) <= p["sparse_saved"])
        if covered != p["sparse_saved"]:
            raise ValueError(f"checkpoint {directory} is missing sparse segments")
        return state


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _cat_sparse(parts: list[tuple[Tensor, Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    if not parts:
        return (torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int32), torch.zeros(0))
    return (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]),
            torch.cat([p[2] for p in parts]))


def checkpoint_exists(directory: str | Path) -> bool:
    return (Path(directory) / STATE_FILE).exists()


def remove_checkpoint(directory: str | Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------- bottom-k sketches


def _bottom_k(groups: Tensor, keys: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Order entries by (group, key) and rank them within their group.

    Returns (perm, sorted groups, rank); entries with rank < k are each group's k smallest keys.
    """
    order = torch.argsort(keys, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]
    gs = groups[order]
    first = torch.searchsorted(gs, gs, right=False)
    rank = torch.arange(len(gs)) - first
    return order, gs, rank


# ---------------------------------------------------------------- the generator


_MASK31 = (1 << 31) - 1


def sample_keys(tok: Tensor, feat: Tensor, seed: int) -> Float[Tensor, " n"]:
    """Pseudo-random keys in [0, 1) as a hash of (seed, token, feature): the sampled examples do not
    depend on batch size, feature chunking or where a run was resumed."""
    x = (tok.long() * 1_000_003 + feat.long() * 7_919 + seed * 104_729) & _MASK31
    for mul in (0x2545F491, 0x1B873593, 0x5BD1E995):
        x = (x * mul) & _MASK31
        x = x ^ (x >> 15)
    return x.float() / float(1 << 31)


def stop_layer(model: HookedTransformer, hook_name: str) -> int | None:
    layer = hook_layer(hook_name)
    if layer is None or layer + 1 >= model.cfg.n_layers:
        return None
    return max(layer, 0) + 1


class DashboardGenerator:
    """Streams token batches through one model + source and accumulates dashboard state."""

    def __init__(self, model: HookedTransformer, source: Source, context_size: int,
                 cfg: DashboardConfig | None = None, state: DashboardState | None = None) -> None:
        self.model = model
        self.source = source
        self.cfg = cfg or DashboardConfig()
        self.context_size = context_size
        if state is None:
            state = DashboardState.empty(source.d_sae, context_size, self.cfg)
        elif (state.d_sae, state.context_size, state.cfg) != (source.d_sae, context_size, self.cfg):
            raise ValueError("checkpoint was made for another source, context size or config")
        self.state = state
        tok = model.tokenizer
        ids = set(tok.all_special_ids) if (tok is not None and self.cfg.ignore_special_tokens) else set()
        self._special = torch.tensor(sorted(ids), dtype=torch.long)
        self.device = torch.device(model_device(model))

    # -- per batch

    @torch.inference_mode()
    def process_batch(self, tokens: Int[Tensor, "batch ctx"]) -> None:
        st, cfg = self.state, self.cfg
        b, ctx = tokens.shape
        if ctx != self.context_size:
            raise ValueError(f"batch has {ctx} tokens per sequence, expected {self.context_size}")
        if (st.n_seqs + b) * ctx >= 2**31:
            raise ValueError("too many tokens for one dashboard run (2^31)")
        tokens = tokens.long()
        acts = self._hook_acts(tokens)  # [b, ctx, d_in] on the model device
        mask = self._mask(tokens)  # [b, ctx] bool, cpu
        rows = max(1, cfg.max_elements // (ctx * st.d_sae))
        mask_dev = mask.to(self.device)
        for r0 in range(0, b, rows):
            feats = self.source.encode_hook_acts(acts[r0:r0 + rows]).float()
            feats = feats.masked_fill(~mask_dev[r0:r0 + rows, :, None], 0.0).cpu()
            self._update(feats, st.n_seqs + r0)
        st.tokens.append(tokens.to(torch.int32).cpu())
        st.n_seqs += b
        st.n_tokens += int(mask.sum())
        st.batches_done += 1

    def _mask(self, tokens: Tensor) -> Tensor:
        mask = torch.ones(tokens.shape, dtype=torch.bool)
        mask[:, : self.cfg.skip_positions] = False
        if len(self._special):
            mask &= ~torch.isin(tokens.cpu(), self._special)
        return mask

    def _hook_acts(self, tokens: Tensor) -> Tensor:
        """Activations at the hook: a forward stopped after the hook's block (evals: full runs)."""
        hook = self.source.hook_name
        store: dict[str, Tensor] = {}

        def keep(act: Tensor, hook: Any) -> None:
            store["act"] = act

        n_eval = max(0, min(tokens.shape[0], self.cfg.eval_sequences - self.state.n_seqs))
        tokens = tokens.to(self.device)
        if n_eval:
            return self._eval_batch(tokens, n_eval, store, keep)
        self.model.run_with_hooks(tokens, fwd_hooks=[(hook, keep)],
                                  stop_at_layer=stop_layer(self.model, hook), return_type=None)
        return store["act"]

    def _eval_batch(self, tokens: Tensor, n_eval: int, store: dict[str, Tensor],
                    keep: Callable[..., None]) -> Tensor:
        """Core evals as SAE-Lens's ``run_evals`` defines them: the SAE spliced in at every position but
        the tokenizer's special tokens (BOS/EOS/PAD, only where the model has them), the zero ablation
        at every position, losses and reconstruction averaged over non-special tokens. A labelled
        variant (prefix ``sink_``) also leaves the first ``skip_positions`` positions (the attention
        sink) out of the splice, the ablation and every average."""
        hook, skip, ev = self.source.hook_name, self.cfg.skip_positions, self.state.evals
        # a transcoder reads `hook` and predicts its output hook (the MLP output): its reconstruction is
        # compared with, spliced into and ablated at that output hook (evals: "spliced_hook")
        out_hook = self.source.hook_name_out if self.source.kind == "transcoder" else None
        hooks: FwdHooks = [(hook, keep)] + ([(out_hook, _store_hook(store, "out"))] if out_hook else [])
        clean = self.model.run_with_hooks(tokens, fwd_hooks=hooks, return_type="loss",
                                          loss_per_token=True)
        acts, sae = store["act"], self.source.sae
        if sae is None:
            return acts
        ev_tokens, x = tokens[:n_eval], acts[:n_eval]
        target = store["out"][:n_eval] if out_hook else x
        counted = self._eval_mask(ev_tokens)  # [n, ctx] bool: SAE-Lens's non-special tokens
        feats = self.source.encode_hook_acts(x)
        recon = sae.decode(feats.to(sae.W_dec.dtype)).double().reshape(target.shape).flatten(2)
        xf = target.flatten(2).double()
        ev["spliced_hook"] = out_hook or hook
        variants = {"": (counted, torch.ones_like(counted))}
        if skip:
            sink = counted.clone()
            sink[:, :skip] = False
            outside = torch.ones_like(counted)
            outside[:, :skip] = False
            variants["sink_"] = (sink, outside)
        for prefix, (mask, ablate) in variants.items():
            self._add_recon(prefix, xf[mask], recon[mask], feats.flatten(2)[mask])
            splice: FwdHooks = [(hook, _splice_hook(self.source, mask))]
            if out_hook:
                inputs: dict[str, Tensor] = {}
                splice = [(hook, _store_hook(inputs, "act")),
                          (out_hook, _splice_hook(self.source, mask, inputs))]
            spliced = self.model.run_with_hooks(ev_tokens, fwd_hooks=splice,
                                                return_type="loss", loss_per_token=True)
            zeroed = self.model.run_with_hooks(ev_tokens, fwd_hooks=[(out_hook or hook, _zero_hook(ablate))],
                                               return_type="loss", loss_per_token=True)
            loss_mask = mask[:, :-1]  # the loss at position i predicts token i + 1
            for name, loss in (("ce_clean", clean[:n_eval]), ("ce_sae", spliced), ("ce_zero", zeroed)):
                ev[prefix + name] = ev.get(prefix + name, 0.0) + float(loss[loss_mask].double().sum())
            ev[prefix + "n_ce"] = ev.get(prefix + "n_ce", 0.0) + float(loss_mask.sum())
        return acts

    def _eval_mask(self, tokens: Tensor) -> Tensor:
        """True where SAE-Lens's evals count a token: not one of the tokenizer's structural special
        tokens (``sae_lens.util.get_special_token_ids``: BOS, EOS, PAD, ...)."""
        mask = torch.ones(tokens.shape, dtype=torch.bool, device=tokens.device)
        tok = self.model.tokenizer
        if tok is not None and self.cfg.ignore_special_tokens:
            from sae_lens.util import get_special_token_ids  # noqa: PLC0415

            ids = torch.tensor(sorted(get_special_token_ids(tok)), dtype=torch.long, device=tokens.device)
            if len(ids):
                mask &= ~torch.isin(tokens, ids)
        return mask

    def _add_recon(self, prefix: str, x: Float[Tensor, "n d"], recon: Float[Tensor, "n d"],
                   feats: Float[Tensor, "n d_sae"]) -> None:
        """Running sums for explained variance (SAE-Lens's ExplainedVarianceCalculator), MSE (squared
        error summed over dimensions, mean over tokens), cosine similarity and L0."""
        ev = self.state.evals
        err = (x - recon).pow(2).sum(-1)
        cos = (x * recon).sum(-1) / (x.norm(dim=-1) * recon.norm(dim=-1)).clamp(min=1e-12)
        for name, value in (("n_recon", float(x.shape[0])), ("sse", float(err.sum())),
                            ("sum_x2", float(x.pow(2).sum())), ("cossim", float(cos.sum())),
                            ("l0", float((feats != 0).sum()))):
            ev[prefix + name] = ev.get(prefix + name, 0.0) + value
        sums = x.sum(0).cpu()
        if prefix:
            ev[prefix + "sum_x"] = sums + ev[prefix + "sum_x"] if prefix + "sum_x" in ev else sums
        else:
            self.state.eval_sum_x = sums if self.state.eval_sum_x is None else self.state.eval_sum_x + sums

    def _update(self, feats: Float[Tensor, "s ctx d_sae"], seq_base: int) -> None:
        t, k = self.state.t, self.cfg.top_k
        s, ctx, _ = feats.shape
        # top-k sequences by their max activation
        seq_max, seq_arg = feats.max(dim=1)  # [s, d]
        cand_val = seq_max.T.masked_fill(seq_max.T <= 0, -_INF)
        cand_tok = ((seq_base + torch.arange(s)) * ctx)[None, :] + seq_arg.T
        all_val = torch.cat([t["top_val"], cand_val], dim=1)
        all_tok = torch.cat([t["top_tok"], cand_tok], dim=1)
        top_val, idx = all_val.topk(k, dim=1)
        t["top_val"], t["top_tok"] = top_val, all_tok.gather(1, idx)
        # sparse non-zero activations
        nz = (feats > 0).nonzero()
        if not len(nz):
            return
        vals = feats[nz[:, 0], nz[:, 1], nz[:, 2]]
        tok = (seq_base + nz[:, 0]) * ctx + nz[:, 1]
        feat = nz[:, 2]
        t["count"] += torch.bincount(feat, minlength=self.state.d_sae)
        bmax = seq_max.max(dim=0).values
        t["max_act"] = torch.maximum(t["max_act"], bmax)
        self.state.sparse.append((tok.to(torch.int32), feat.to(torch.int32), vals))
        self._fine_update(feat, vals, tok, bmax)

    def _fine_update(self, feat: Tensor, vals: Tensor, tok: Tensor, bmax: Tensor) -> None:
        t, nf, r = self.state.t, self.cfg.fine_bins, self.cfg.bin_size
        grid = t["grid"]
        new = (bmax > 0) & (grid == 0)
        first = torch.pow(2.0, torch.ceil(torch.log2(bmax[new])))  # G is always a power of two:
        grid[new] = torch.where(first < bmax[new], first * 2, first)  # the smallest >= the max so far
        grow = (bmax > grid) & (grid > 0)
        if grow.any():
            fs = grow.nonzero().squeeze(1)
            m = torch.ceil(torch.log2(bmax[fs] / grid[fs])).clamp(min=1).long()
            m = torch.where(grid[fs] * torch.pow(2.0, m.float()) < bmax[fs], m + 1, m).clamp(max=62)
            self._regrid(fs, m)
            grid[fs] = grid[fs] * torch.pow(2.0, m.float())
        fine = (torch.ceil(vals / grid[feat] * nf) - 1).clamp(0, nf - 1).long()
        g = feat * nf + fine
        t["hist"].view(-1).add_(torch.bincount(g, minlength=self.state.d_sae * nf))
        keys = sample_keys(tok, feat, self.cfg.seed)
        thr = t["res_key"].view(-1, r).max(dim=1).values[g]
        acc = keys < thr
        self._merge(g[acc], keys[acc], vals[acc], tok[acc])

    def _merge(self, g: Tensor, keys: Tensor, vals: Tensor, tok: Tensor) -> None:
        if not len(g):
            return
        t, r = self.state.t, self.cfg.bin_size
        rk, rv, rt = t["res_key"].view(-1, r), t["res_val"].view(-1, r), t["res_tok"].view(-1, r)
        groups = torch.unique(g)
        all_g = torch.cat([groups.repeat_interleave(r), g])
        all_k = torch.cat([rk[groups].flatten(), keys])
        all_v = torch.cat([rv[groups].flatten(), vals])
        all_t = torch.cat([rt[groups].flatten(), tok])
        order, gs, rank = _bottom_k(all_g, all_k, r)
        keep = rank < r
        flat = gs[keep] * r + rank[keep]
        sel = order[keep]
        rk.view(-1)[flat] = all_k[sel]
        rv.view(-1)[flat] = all_v[sel]
        rt.view(-1)[flat] = all_t[sel]

    def _regrid(self, fs: Tensor, m: Tensor) -> None:
        """Widen the fine grid of features ``fs`` by 2**m: fine bin b merges into b >> m."""
        t, nf, r = self.state.t, self.cfg.fine_bins, self.cfg.bin_size
        n = len(fs)
        new_bin = torch.arange(nf)[None, :] >> m[:, None]  # [n, nf]
        t["hist"][fs] = torch.zeros(n, nf, dtype=torch.int64).scatter_add_(1, new_bin, t["hist"][fs])
        grp = (torch.arange(n)[:, None] * nf + new_bin)[:, :, None].expand(n, nf, r).flatten()
        keys, vals, toks = t["res_key"][fs].flatten(), t["res_val"][fs].flatten(), t["res_tok"][fs].flatten()
        order, gs, rank = _bottom_k(grp, keys, r)
        keep = rank < r
        flat, sel = gs[keep] * r + rank[keep], order[keep]
        nk = torch.full((n * nf * r,), _INF)
        nv = torch.zeros(n * nf * r)
        nt = torch.full((n * nf * r,), -1, dtype=torch.int64)
        nk[flat], nv[flat], nt[flat] = keys[sel], vals[sel], toks[sel]
        t["res_key"][fs] = nk.view(n, nf, r)
        t["res_val"][fs] = nv.view(n, nf, r)
        t["res_tok"][fs] = nt.view(n, nf, r)

    # -- end of stream

    def finalize(self) -> DashboardResult:
        return finalize(self)


def run_stream(generator: DashboardGenerator, batches: Iterable[Tensor],
               on_batch: Callable[[DashboardGenerator], None] | None = None) -> DashboardGenerator:
    """Feed ``batches`` (skipping those the state already holds, for resumes)."""
    for i, batch in enumerate(batches):
        if i < generator.state.batches_done:
            continue
        generator.process_batch(batch)
        if on_batch is not None:
            on_batch(generator)
    return generator


def iter_batches(sequences: Int[Tensor, "n ctx"], batch_size: int) -> Iterator[Tensor]:
    for start in range(0, len(sequences), batch_size):
        yield sequences[start:start + batch_size]


def generate_dashboards(model: HookedTransformer, source: Source, sequences: Int[Tensor, "n ctx"],
                        cfg: DashboardConfig | None = None, batch_size: int = 32) -> DashboardResult:
    """One call for scripts and tests: stream every batch, then finalize."""
    gen = DashboardGenerator(model, source, sequences.shape[1], cfg)
    run_stream(gen, iter_batches(sequences, batch_size))
    return gen.finalize()


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Example:
    """One stored example: a whole sequence with this feature's per-token values."""

    feature: int
    sequence: int  # data index: the sequence's number in the dataset
    token_ids: list[int]
    values: list[float]
    max_value: float
    max_value_token_index: int
    min_value: float
    qualifying_token_index: int
    bin_min: float  # -1 for the top group
    bin_max: float
    bin_contains: float  # share of non-zero activations in the bin; -1 for the top group
    # attention SAEs, top group: the activation at qualifying_token_index split over source tokens (DFA)
    dfa_values: list[float] | None = None
    dfa_target_index: int | None = None
    dfa_max_value: float | None = None


@dataclass(frozen=True)
class ExampleBatch:
    """Examples of a range of features as columns (one row per example, ordered by feature): what
    bulk writers use directly; ``to_examples`` gives the same rows as Example objects."""

    feature: Tensor  # [n] int64
    sequence: Tensor  # [n] int64
    token_ids: Tensor  # [n, ctx] int32
    values: Tensor  # [n, ctx] float32, rounded to round_digits
    max_value: Tensor  # [n] float32
    max_value_token_index: Tensor  # [n] int64
    min_value: Tensor
    qualifying_token_index: Tensor
    bin_min: Tensor  # float32; -1 for the top group
    bin_max: Tensor
    bin_contains: Tensor
    dfa_rows: Tensor | None = None  # [m] rows with DFA (attention SAEs: the top group), ascending
    dfa_values: Tensor | None = None  # [m, ctx] float32, rounded; target = qualifying_token_index

    def __len__(self) -> int:
        return len(self.feature)

    def dfa(self) -> dict[int, list[float]]:
        """Row -> DFA values, for the rows that have them."""
        if self.dfa_rows is None or self.dfa_values is None:
            return {}
        return dict(zip(self.dfa_rows.tolist(), self.dfa_values.tolist(), strict=True))

    def to_examples(self, lo: int, hi: int) -> list[list[Example]]:
        out: list[list[Example]] = [[] for _ in range(hi - lo)]
        dfa = self.dfa()
        cols = (self.feature, self.sequence, self.token_ids, self.values, self.max_value,
                self.max_value_token_index, self.min_value, self.qualifying_token_index, self.bin_min,
                self.bin_max, self.bin_contains)
        for row, (f, seq, ids, vals, mx, arg, mn, q, bmin, bmax, bc) in enumerate(
                zip(*(c.tolist() for c in cols), strict=True)):
            d = dfa.get(row)
            out[f - lo].append(Example(
                feature=f, sequence=seq, token_ids=ids, values=vals, max_value=mx,
                max_value_token_index=arg, min_value=mn, qualifying_token_index=q, bin_min=bmin,
                bin_max=bmax, bin_contains=bc, dfa_values=d, dfa_target_index=None if d is None else q,
                dfa_max_value=None if d is None else max(d)))
        return out


@dataclass
class DashboardResult:
    """Finalized per-feature statistics (tensors indexed by feature) and lazy examples."""

    d_sae: int
    context_size: int
    n_seqs: int
    n_tokens: int
    count: Tensor
    frac_nonzero: Tensor
    max_act: Tensor
    is_dead: Tensor
    freq_hist: list[tuple[list[float], list[float]]]  # per feature (heights, values)
    pos_ids: Tensor
    pos_values: Tensor
    neg_ids: Tensor
    neg_values: Tensor
    logit_hist_heights: Tensor
    logit_hist_values: Tensor
    cos_indices: Tensor
    cos_values: Tensor
    umap_xy: Tensor | None
    umap_cluster: Tensor | None
    evals: dict[str, Any]
    example_batch_fn: Callable[[int, int], ExampleBatch] = field(repr=False)
    token_string_fn: Callable[[Iterable[int]], dict[int, str]] = field(repr=False)

    def example_batch(self, lo: int, hi: int) -> ExampleBatch:
        """Examples of features lo..hi-1 as columns (for bulk writes)."""
        return self.example_batch_fn(lo, hi)

    def examples(self, lo: int, hi: int) -> list[list[Example]]:
        """Examples of features lo..hi-1 (top group first, then interval bins from the highest)."""
        return self.example_batch_fn(lo, hi).to_examples(lo, hi)

    def token_strings(self, ids: Iterable[int]) -> dict[int, str]:
        return self.token_string_fn(ids)

    def summary(self) -> dict[str, Any]:
        return {"d_sae": self.d_sae, "n_seqs": self.n_seqs, "n_tokens": self.n_tokens,
                "dead": int(self.is_dead.sum()), "evals": self.evals}

    def to_json(self) -> str:
        return json.dumps(self.summary())


# ---------------------------------------------------------------- finalize


@torch.inference_mode()
def finalize(gen: DashboardGenerator) -> DashboardResult:
    """Turn the running state into per-feature dashboards (histograms, bins, logits, cos-sim, UMAP)."""
    st, cfg, t = gen.state, gen.cfg, gen.state.t
    count, max_act = t["count"], t["max_act"]
    dead = count == 0
    width = t["grid"] / cfg.fine_bins
    n_used = torch.where(dead, torch.ones_like(count),
                         torch.ceil(max_act / width.clamp(min=1e-30)).long().clamp(1, cfg.fine_bins))
    bins = _quantile_bins(st, cfg, width, n_used)
    logits = _logit_stats(gen)
    cos_idx, cos_val = _cos_sim(gen.source.W_dec.float().cpu(), cfg)
    umap_xy, clusters = _umap(gen.source.W_dec.float().cpu(), cfg)
    heights, centers = t["hist"].tolist(), ((torch.arange(cfg.fine_bins)[None, :] + 0.5)
                                            * width[:, None]).tolist()
    freq_hist = [([], []) if dead[f] else (heights[f][:n], centers[f][:n])
                 for f, n in enumerate(n_used.tolist())]
    examples_fn = _ExampleBuilder(gen, bins)
    return DashboardResult(
        d_sae=st.d_sae, context_size=st.context_size, n_seqs=st.n_seqs, n_tokens=st.n_tokens,
        count=count, frac_nonzero=count.double() / max(st.n_tokens, 1), max_act=max_act, is_dead=dead,
        freq_hist=freq_hist, **logits, cos_indices=cos_idx, cos_values=cos_val, umap_xy=umap_xy,
        umap_cluster=clusters, evals=_evals(gen), example_batch_fn=examples_fn.batch,
        token_string_fn=examples_fn.token_strings)


@dataclass
class _Bins:
    fine_to_bin: Tensor  # [d, fine] -> interval bin
    bin_min: Tensor  # [d, n_bins]
    bin_max: Tensor
    share: Tensor  # [d, n_bins] share of non-zero activations
    sample_feat: Tensor  # [n] sampled examples, ordered by (feature, bin desc, key)
    sample_bin: Tensor
    sample_tok: Tensor


def _quantile_bins(st: DashboardState, cfg: DashboardConfig, width: Tensor, n_used: Tensor) -> _Bins:
    t, nb, r = st.t, cfg.n_bins, cfg.bin_size
    d = st.d_sae
    j = torch.arange(nb + 1)
    edges = torch.round(j[None, :] * n_used[:, None].double() / nb).long()  # [d, nb+1] in fine bins
    fine = torch.arange(cfg.fine_bins)
    fine_to_bin = (fine[None, :, None] >= edges[:, None, 1:nb]).sum(-1)  # [d, fine]
    counts = torch.zeros(d, nb, dtype=torch.int64).scatter_add_(1, fine_to_bin, t["hist"])
    bin_min = edges[:, :nb] * width[:, None]
    bin_max = torch.minimum(edges[:, 1:] * width[:, None], t["max_act"][:, None])
    share = counts.double() / t["count"].clamp(min=1)[:, None]
    filled = t["res_key"] < _INF
    f_idx, b_idx, r_idx = filled.nonzero(as_tuple=True)
    fbin = fine_to_bin[f_idx, b_idx]
    group = f_idx * nb + (nb - 1 - fbin)  # highest bin first
    keys = t["res_key"][f_idx, b_idx, r_idx]
    order, _, rank = _bottom_k(group, keys, r)
    sel = order[rank < r]
    return _Bins(fine_to_bin, bin_min, bin_max, share, f_idx[sel], fbin[sel],
                 t["res_tok"][f_idx[sel], b_idx[sel], r_idx[sel]])


def _logit_stats(gen: DashboardGenerator) -> dict[str, Tensor]:
    """Top ± logits of W_dec @ W_U and the histogram of each feature's logit effects.

    The [d_sae, vocab] matrix is never held whole: it is computed ``max_elements`` at a time and each
    row is reduced while it is in cache, in one pass for the top/bottom n (by insertion) and one for
    the histogram (numba, parallel over rows). Without numba the same statistics come from torch.
    """
    cfg, model, w_dec = gen.cfg, gen.model, gen.source.W_dec
    d, nb = w_dec.shape[0], cfg.logit_hist_bins
    out = {"pos_ids": torch.zeros(d, 0, dtype=torch.long), "pos_values": torch.zeros(d, 0),
           "neg_ids": torch.zeros(d, 0, dtype=torch.long), "neg_values": torch.zeros(d, 0),
           "logit_hist_heights": torch.zeros(d, 0), "logit_hist_values": torch.zeros(d, 0)}
    w_u = getattr(model, "W_U", None)
    if w_u is None or w_dec.shape[1] != w_u.shape[0]:
        return out  # not in the residual stream (e.g. hook_z): no direct logit effect
    vocab = w_u.shape[1]
    n = min(cfg.n_logits, vocab)
    k = max(n, 1)  # the histogram needs each row's min and max even when no logits are listed
    kernel = _logit_kernel()
    chunk = max(1, cfg.max_elements // vocab)
    pos_v, neg_v = torch.empty(d, k), torch.empty(d, k)
    pos_i, neg_i = torch.empty(d, k, dtype=torch.long), torch.empty(d, k, dtype=torch.long)
    heights = torch.zeros(d, nb, dtype=torch.int64)
    for lo in range(0, d, chunk):
        hi = min(lo + chunk, d)
        logits = (w_dec[lo:hi].to(w_u.dtype) @ w_u).detach().float().cpu().contiguous()  # [c, vocab]
        if kernel is not None:
            kernel(logits.numpy(), k, nb, pos_v[lo:hi].numpy(), pos_i[lo:hi].numpy(),
                   neg_v[lo:hi].numpy(), neg_i[lo:hi].numpy(), heights[lo:hi].numpy())
            continue
        pos_v[lo:hi], pos_i[lo:hi] = logits.topk(k, dim=1)
        neg_v[lo:hi], neg_i[lo:hi] = logits.topk(k, dim=1, largest=False)
        mn = neg_v[lo:hi, :1]
        step = ((pos_v[lo:hi, :1] - mn) / nb).clamp(min=1e-12)
        idx = logits.sub_(mn).div_(step).floor_().clamp_(0, nb - 1).long()
        heights[lo:hi] = torch.zeros(hi - lo, nb, dtype=torch.int64).scatter_add_(
            1, idx, torch.ones_like(idx))
    step = ((pos_v[:, 0] - neg_v[:, 0]) / nb).clamp(min=1e-12)
    centers = neg_v[:, :1] + (torch.arange(nb)[None, :] + 0.5) * step[:, None]
    return {"pos_ids": pos_i[:, :n], "pos_values": pos_v[:, :n], "neg_ids": neg_i[:, :n],
            "neg_values": neg_v[:, :n], "logit_hist_heights": heights.float(),
            "logit_hist_values": centers}


def _logit_rows(logits: Any, k: int, nb: int, pv: Any, pi: Any, nv: Any, ni: Any,
                heights: Any) -> None:  # pragma: no cover - compiled by numba
    """Per row of a float32 [c, vocab] array: the k largest / smallest values (ties: lower index
    first) and the ``nb``-bin histogram over [min, max] with torch's float32 arithmetic."""
    c, vocab = logits.shape
    for r in numba_prange(c):
        row = logits[r]
        for j in range(k):
            pv[r, j], pi[r, j], nv[r, j], ni[r, j] = -np.inf, -1, np.inf, -1
        for j in range(vocab):
            x = row[j]
            if x > pv[r, k - 1]:
                p = k - 1
                while p > 0 and pv[r, p - 1] < x:
                    pv[r, p], pi[r, p] = pv[r, p - 1], pi[r, p - 1]
                    p -= 1
                pv[r, p], pi[r, p] = x, j
            if x < nv[r, k - 1]:
                p = k - 1
                while p > 0 and nv[r, p - 1] > x:
                    nv[r, p], ni[r, p] = nv[r, p - 1], ni[r, p - 1]
                    p -= 1
                nv[r, p], ni[r, p] = x, j
        mn = np.float32(nv[r, 0])
        step = np.float32(np.float32(pv[r, 0]) - mn) / np.float32(nb)
        if step < np.float32(1e-12):
            step = np.float32(1e-12)
        for j in range(vocab):
            b = np.floor(np.float32(row[j] - mn) / step)
            heights[r, min(max(int(b), 0), nb - 1)] += 1


numba_prange = range
_KERNELS: dict[str, Callable[..., None] | None] = {}


def _logit_kernel() -> Callable[..., None] | None:
    """``_logit_rows`` compiled by numba (cached on disk), or None without numba."""
    if "logits" not in _KERNELS:
        try:
            import numba  # noqa: PLC0415
        except ImportError:  # pragma: no cover
            _KERNELS["logits"] = None
        else:
            global numba_prange
            numba_prange = numba.prange
            _KERNELS["logits"] = numba.njit(parallel=True, cache=True)(_logit_rows)
    return _KERNELS["logits"]


def _cos_sim(w_dec: Float[Tensor, "d d_in"], cfg: DashboardConfig) -> tuple[Tensor, Tensor]:
    d = w_dec.shape[0]
    n = min(cfg.n_cos_sim, d - 1)
    if n <= 0:
        return torch.zeros(d, 0, dtype=torch.long), torch.zeros(d, 0)
    wn = torch.nn.functional.normalize(w_dec, dim=1)
    chunk = max(1, cfg.max_elements // d)
    idx_parts, val_parts = [], []
    for lo in range(0, d, chunk):
        sims = wn[lo:lo + chunk] @ wn.T
        rows = torch.arange(len(sims))
        sims[rows, lo + rows] = -_INF
        v, i = sims.topk(n, dim=1)
        idx_parts.append(i)
        val_parts.append(v)
    return torch.cat(idx_parts), torch.cat(val_parts)


def _umap(w_dec: Float[Tensor, "d d_in"], cfg: DashboardConfig) -> tuple[Tensor | None, Tensor | None]:
    """2-D UMAP of the decoder directions (cosine metric, seeded) and k-means clusters on the map."""
    d = w_dec.shape[0]
    if not cfg.umap or d < 8:
        return None, None
    import umap  # noqa: PLC0415
    from sklearn.cluster import KMeans  # noqa: PLC0415

    data = torch.nn.functional.normalize(w_dec, dim=1).numpy()
    reducer = umap.UMAP(n_components=2, n_neighbors=min(cfg.umap_n_neighbors, d - 1), metric="cosine",
                        random_state=cfg.seed, n_jobs=1)
    xy = reducer.fit_transform(data)
    k = cfg.umap_clusters or max(2, min(50, round(math.sqrt(d / 2))))
    clusters = KMeans(n_clusters=min(k, d), random_state=cfg.seed, n_init=3).fit_predict(xy)
    return torch.from_numpy(xy).float(), torch.from_numpy(clusters).long()


def _splice_hook(source: Source, mask: Bool[Tensor, "b ctx"],
                 inputs: dict[str, Tensor] | None = None) -> Callable[..., Tensor]:
    """Replace the hook's activations with the SAE's reconstruction where ``mask`` is True (a transcoder:
    its prediction from ``inputs["act"]``, captured at its input hook earlier in the same forward)."""

    def splice(act: Tensor, hook: Any) -> Tensor:
        sae = source.sae
        x = act if inputs is None else inputs["act"]
        new = sae.decode(source.encode_hook_acts(x)).reshape(act.shape).to(act.dtype)
        return torch.where(mask.view(*mask.shape, *([1] * (act.ndim - 2))), new, act)

    return splice


def _store_hook(store: dict[str, Tensor], key: str) -> Callable[..., None]:
    def keep(act: Tensor, hook: Any) -> None:
        store[key] = act

    return keep


def _zero_hook(mask: Bool[Tensor, "b ctx"]) -> Callable[..., Tensor]:
    def zero(act: Tensor, hook: Any) -> Tensor:
        return act.masked_fill(mask.view(*mask.shape, *([1] * (act.ndim - 2))), 0)

    return zero


def _core_metrics(ev: dict[str, Any], sum_x: Tensor | None, prefix: str = "") -> dict[str, Any]:
    """SAE-Lens's core metrics from the running sums of one variant (see ``_eval_batch``)."""
    out: dict[str, Any] = {}
    n = ev.get(prefix + "n_recon", 0.0)
    if n and sum_x is not None:
        total = ev[prefix + "sum_x2"] / n - float((sum_x / n).pow(2).sum())
        out["explained_variance"] = 1.0 - (ev[prefix + "sse"] / n) / total if total > 1e-10 else float("nan")
        out["mse"] = ev[prefix + "sse"] / n
        if prefix + "cossim" in ev:
            out["cossim"] = ev[prefix + "cossim"] / n
        if prefix + "l0" in ev:
            out["l0"] = ev[prefix + "l0"] / n
        out["n_tokens"] = int(n)
    if ev.get(prefix + "n_ce"):
        clean, sae, zero = (ev[prefix + k] / ev[prefix + "n_ce"] for k in ("ce_clean", "ce_sae", "ce_zero"))
        out.update(ce_loss_without_sae=clean, ce_loss_with_sae=sae, ce_loss_with_ablation=zero,
                   ce_loss_score=(zero - sae) / (zero - clean) if zero != clean else float("nan"))
    return out


def _evals(gen: DashboardGenerator) -> dict[str, Any]:
    """Core evals in SAEBench's layout, as SAE-Lens's evals define them (over the eval sequences: special
    tokens excluded, every other position spliced); the dead fraction and a dashboard L0 come from the
    whole dashboard pass. ``excluding_attention_sink`` is the same computation without the first
    ``skip_positions`` positions, labelled as such."""
    st, ev = gen.state, gen.state.evals
    count = st.t["count"]
    core = _core_metrics(ev, st.eval_sum_x)
    out: dict[str, Any] = {
        "sparsity": {"l0": core.get("l0", float(count.sum()) / max(st.n_tokens, 1))},
        "misc": {"frac_dead": float((count == 0).double().mean()), "n_tokens": st.n_tokens,
                 "n_eval_tokens": core.get("n_tokens", 0),
                 "l0_dashboard": float(count.sum()) / max(st.n_tokens, 1),
                 "definitions": "sae_lens.evals", **({"spliced_hook": ev["spliced_hook"]}
                                                     if "spliced_hook" in ev else {})},
    }
    if "explained_variance" in core:
        out["reconstruction_quality"] = {k: core[k] for k in ("explained_variance", "mse", "cossim")
                                         if k in core}
    if "ce_loss_score" in core:
        out["model_performance_preservation"] = {
            k: core[k] for k in ("ce_loss_without_sae", "ce_loss_with_sae", "ce_loss_with_ablation",
                                 "ce_loss_score")}
    sink = _core_metrics(ev, ev.get("sink_sum_x"), "sink_")
    if sink:
        out["excluding_attention_sink"] = {"positions_excluded": gen.cfg.skip_positions, **sink}
    return out


class _ExampleBuilder:
    """Builds Example rows for a range of features from the sparse store (no model run)."""

    def __init__(self, gen: DashboardGenerator, bins: _Bins) -> None:
        st = gen.state
        self.ctx, self.bins, self.tokenizer = st.context_size, bins, gen.model.tokenizer
        self.digits = gen.cfg.round_digits
        self.total = st.n_seqs * st.context_size
        tok, feat, val = _cat_sparse(st.sparse)
        keys = feat.long() * self.total + tok.long()
        order = torch.argsort(keys)
        self.keys, self.vals = keys[order], val[order]
        self.tokens = st.all_tokens()
        self.top_val, self.top_tok = st.t["top_val"], st.t["top_tok"]
        self.max_act = st.t["max_act"]
        self._strings: dict[int, str] = {}
        self.model, self.source = gen.model, gen.source
        self.with_dfa = supports_dfa(gen.source)

    def token_strings(self, ids: Iterable[int]) -> dict[int, str]:
        missing = {int(i) for i in ids} - self._strings.keys()
        if missing and self.tokenizer is not None:
            self._strings.update(vocab_strings(self.tokenizer, missing))
        return {int(i): self._strings.get(int(i), f"<{int(i)}>") for i in ids}

    def batch(self, lo: int, hi: int) -> ExampleBatch:
        """Examples of features lo..hi-1 as columns, ordered by feature, then the top group (by
        max value) and the interval bins from the highest (by sampling key)."""
        b = self.bins
        tv, tt = self.top_val[lo:hi], self.top_tok[lo:hi]
        tf, tk = (tv > -_INF).nonzero(as_tuple=True)
        in_range = (b.sample_feat >= lo) & (b.sample_feat < hi)
        sf, sb, stok = b.sample_feat[in_range], b.sample_bin[in_range], b.sample_tok[in_range]
        feats = torch.cat([tf + lo, sf])
        order = torch.argsort(feats, stable=True)  # top group first within each feature
        feats = feats[order]
        toks = torch.cat([tt[tf, tk], stok])[order]
        bmin = torch.cat([torch.full((len(tf),), -1.0), b.bin_min[sf, sb].float()])[order]
        bmax = torch.cat([self.max_act[tf + lo], b.bin_max[sf, sb].float()])[order]
        bcont = torch.cat([torch.full((len(tf),), -1.0), b.share[sf, sb].float()])[order]
        seqs = toks // self.ctx
        dense = self._values(feats, seqs)
        mx, arg = dense.max(dim=1) if len(feats) else (torch.zeros(0), torch.zeros(0, dtype=torch.long))
        mn = dense.min(dim=1).values if len(feats) else torch.zeros(0)
        dfa_rows = dfa_values = None
        if self.with_dfa:  # attention SAEs: DFA of the top group, at each example's qualifying token
            dfa_rows = (bmin == -1).nonzero(as_tuple=True)[0]
            dfa_values = torch.round(direct_feature_attribution(
                self.model, self.source, self.tokens[seqs[dfa_rows]], feats[dfa_rows],
                toks[dfa_rows] % self.ctx), decimals=self.digits)
        return ExampleBatch(
            feature=feats, sequence=seqs, token_ids=self.tokens[seqs],
            values=torch.round(dense, decimals=self.digits), max_value=mx, max_value_token_index=arg,
            min_value=mn, qualifying_token_index=toks % self.ctx, bin_min=bmin, bin_max=bmax,
            bin_contains=bcont, dfa_rows=dfa_rows, dfa_values=dfa_values)

    def __call__(self, lo: int, hi: int) -> list[list[Example]]:
        return self.batch(lo, hi).to_examples(lo, hi)

    def _values(self, feats: Tensor, seqs: Tensor) -> Float[Tensor, "n ctx"]:
        """Per-token values of feature feats[i] over sequence seqs[i], from the sorted sparse keys."""
        start = feats * self.total + seqs * self.ctx
        a = torch.searchsorted(self.keys, start)
        b = torch.searchsorted(self.keys, start + self.ctx)
        n = b - a
        dense = torch.zeros(len(feats), self.ctx)
        if int(n.sum()) == 0:
            return dense
        rep = torch.repeat_interleave(torch.arange(len(feats)), n)
        offsets = torch.arange(int(n.sum())) - torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
        idx = a[rep] + offsets
        dense[rep, self.keys[idx] - start[rep]] = self.vals[idx]
        return dense
