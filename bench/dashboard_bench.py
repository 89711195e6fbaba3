"""Dashboard generation speed: the vectorised streaming generator vs. a naive per-feature loop vs. the
floor (the model to the hook + the SAE encoder over the same tokens), measured in the same run.

    .venv/bin/python bench/dashboard_bench.py                   # SmolLM2-135M (demo model), 16k tokens
    .venv/bin/python bench/dashboard_bench.py --model tiny      # tiny model built in code, seconds

The SAE is the demo SAE when it exists (~/.cache/neuronpedia/saes/...), else a random TopK SAE
(k=32) of the same width. The naive baseline caches all feature activations, then loops over features
in Python (top-k, histogram, quantile sampling, examples per feature); it runs on a subset of
features and is extrapolated to d_sae. UMAP is timed separately (numba compiles it on first use).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference_worker import dashboards as dash  # noqa: E402
from inference_worker.saes import load_sae_from_disk, source_from_sae  # noqa: E402

DEMO_SAE = Path.home() / ".cache/neuronpedia/saes/smollm2-135m-instruct/15-res-demo"


def build(args: argparse.Namespace) -> tuple[Any, Any, str]:
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    if args.model == "tiny":
        from inference_worker.models import build_tiny_model

        model, hook = build_tiny_model(seed=0, n_layers=2, d_model=256, n_heads=4), "blocks.0.hook_resid_post"
    else:
        from inference_worker.models import load_smollm2

        model, hook = load_smollm2("cpu", args.dtype), "blocks.15.hook_resid_post"
    if args.model != "tiny" and DEMO_SAE.exists() and not args.random_sae:
        return model, source_from_sae("15-res-demo", load_sae_from_disk(DEMO_SAE)), f"demo SAE {DEMO_SAE}"
    torch.manual_seed(0)
    cfg = TopKSAEConfig(d_in=model.cfg.d_model, d_sae=args.d_sae, k=32,
                        metadata=SAEMetadata(hook_name=hook, model_name=args.model))
    sae = TopKSAE(cfg).eval()
    layer = hook.split(".")[1]
    return model, source_from_sae(f"{layer}-bench", sae), f"random TopK SAE d_sae={args.d_sae} k=32"


def sequences(model: Any, n_tokens: int, ctx: int) -> torch.Tensor:
    from inference_worker.datasets import DatasetError, load_sequences

    try:
        return load_sequences(model, "corpus:brown", n_tokens // ctx, ctx)
    except DatasetError:
        return torch.randint(10, model.cfg.d_vocab, (n_tokens // ctx, ctx))


@torch.inference_mode()
def floor(model: Any, source: Any, seqs: torch.Tensor, batch: int, keep: bool = False) -> tuple[float, Any]:
    """Model to the hook + encoder, nothing else (optionally keeping all activations for the naive run)."""
    stop = dash.stop_layer(model, source.hook_name)
    kept = []
    t0 = time.perf_counter()
    for b in dash.iter_batches(seqs, batch):
        _, cache = model.run_with_cache(b, names_filter=source.hook_name, stop_at_layer=stop,
                                        return_cache_object=False)
        feats = source.encode_hook_acts(cache[source.hook_name]).float()
        if keep:
            kept.append(feats.to_sparse())
    return time.perf_counter() - t0, kept


def naive(kept: list[torch.Tensor], seqs: torch.Tensor, n_features: int, cfg: dash.DashboardConfig) -> float:
    """Per-feature Python loop over cached activations: what a simple implementation does."""
    feats = torch.cat([k.to_dense() for k in kept])  # [n_seq, ctx, d]
    feats[:, : cfg.skip_positions] = 0
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(0)
    for f in range(n_features):
        col = feats[:, :, f]  # [n_seq, ctx]
        seq_max = col.max(dim=1).values
        top = seq_max.topk(cfg.top_k).indices
        _ = [col[s].tolist() for s in top]
        nz = col[col > 0]
        if not len(nz):
            continue
        mx = float(nz.max())
        _ = torch.histc(nz, bins=cfg.fine_bins, min=0, max=mx)
        edges = torch.linspace(0, mx, cfg.n_bins + 1)
        for j in range(cfg.n_bins):
            where = ((col > edges[j]) & (col <= edges[j + 1])).nonzero()
            if len(where):
                pick = where[torch.randperm(len(where), generator=g)[: cfg.bin_size]]
                _ = [col[s].tolist() for s, _p in pick]
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--tokens", type=int, default=16_384)
    p.add_argument("--context-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--d-sae", type=int, default=4608)
    p.add_argument("--naive-features", type=int, default=256, help="features the naive loop runs")
    p.add_argument("--random-sae", action="store_true")
    p.add_argument("--umap", action="store_true", help="also time the UMAP step")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, source, sae_note = build(args)
    seqs = sequences(model, args.tokens, args.context_size)
    n_tok, d = seqs.numel(), source.d_sae
    cfg = dash.DashboardConfig(umap=False, eval_sequences=0)
    floor(model, source, seqs[: args.batch_size], args.batch_size)  # warm-up
    t_floor, _ = floor(model, source, seqs, args.batch_size)
    t0 = time.perf_counter()
    gen = dash.DashboardGenerator(model, source, args.context_size, cfg)
    dash.run_stream(gen, dash.iter_batches(seqs, args.batch_size))
    t_stream = time.perf_counter() - t0
    result = gen.finalize()
    _ = result.examples(0, d)
    t_vec = time.perf_counter() - t0
    t_cache, kept = floor(model, source, seqs, args.batch_size, keep=True)
    n_naive = min(args.naive_features, d)
    t_loop = naive(kept, seqs, n_naive, cfg)
    t_naive = t_cache + t_loop * d / n_naive
    rows = [("floor: model to hook + encoder", t_floor), ("vectorised stream (no finalize)", t_stream),
            ("vectorised: stream + finalize + all examples", t_vec),
            (f"naive per-feature loop (x{d / n_naive:.0f} extrapolated)", t_naive)]
    if args.umap:
        t1 = time.perf_counter()
        dash._umap(source.W_dec.float(), dash.DashboardConfig())
        rows.append(("UMAP of decoder directions (incl. numba compile)", time.perf_counter() - t1))
    print(f"\nmodel {args.model} ({args.dtype}), {sae_note}, {n_tok:,} tokens "
          f"({len(seqs)} x {args.context_size}), batch {args.batch_size}, {args.threads} threads")
    print(f"{'method':<52} {'wall s':>8} {'tokens/s':>10} {'features/s':>11} {'x floor':>8}")
    for name, secs in rows:
        print(f"{name:<52} {secs:>8.2f} {n_tok / secs:>10,.0f} {d / secs:>11,.1f} {secs / t_floor:>8.2f}")
    print(f"dead features: {int(result.is_dead.sum())}/{d}; examples kept per feature: "
          f"{cfg.top_k} top + {cfg.n_bins} x {cfg.bin_size} sampled")


if __name__ == "__main__":
    main()
