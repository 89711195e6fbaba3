"""Dashboard generation speed: the vectorised streaming generator vs. the floor (the model to the hook +
the SAE encoder over the same tokens) vs. SAEDashboard on the same model, SAE and tokens, in one run.

    .venv/bin/python bench/dashboard_bench.py                   # SmolLM2-135M (demo model), 32k tokens
    .venv/bin/python bench/dashboard_bench.py --model tiny      # tiny model built in code, seconds

SAEDashboard (PyPI sae-dashboard) needs transformer-lens < 3 and transformers < 4.57, so it runs from its
own venv (--saedashboard-python, default ~/.cache/neuronpedia/sae-dashboard-venv) as a subprocess
(bench/saedashboard_baseline.py) on our converted SmolLM2 weights, the same SAE folder and the same
token tensor. Create that venv with:

    python3 -m venv ~/.cache/neuronpedia/sae-dashboard-venv
    ~/.cache/neuronpedia/sae-dashboard-venv/bin/pip install torch==2.13.0 sae-dashboard==0.8.0

"Whole generation" = stream + finalize (logits, histograms, cos-sim, bins) + every example + the
binary COPY payload of every example row (what write_dashboards sends; the database's own ingest time
is not included). UMAP and the SAE evals are off (--umap times UMAP separately).

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


SAEDASHBOARD_PYTHON = Path.home() / ".cache/neuronpedia/sae-dashboard-venv/bin/python"


def copy_payload_seconds(result: Any) -> tuple[float | None, int, str]:
    """Time the binary COPY encoding of every example row (inference.dashboards), no database."""
    try:
        import os

        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuronpedia.settings.local")
        django.setup()
        from datetime import UTC, datetime

        from inference.dashboards import FEATURE_BATCH, _activation_blocks
    except Exception as exc:  # noqa: BLE001
        return None, 0, f"{type(exc).__name__}: {exc}"
    ids = {f: f + 1 for f in range(result.d_sae)}
    t0 = time.perf_counter()
    size = 0
    for lo in range(0, result.d_sae, FEATURE_BATCH):
        hi = min(lo + FEATURE_BATCH, result.d_sae)
        size += sum(len(b) for _n, b in _activation_blocks(result, ids, lo, hi, "generated",
                                                          datetime.now(UTC)))
    return time.perf_counter() - t0, size, ""


def saedashboard(args: argparse.Namespace, model: Any, seqs: torch.Tensor) -> tuple[float | None, str]:
    """Run bench/saedashboard_baseline.py in SAEDashboard's venv; (seconds, note)."""
    import json
    import subprocess
    import tempfile

    py = Path(args.saedashboard_python).expanduser()
    if args.model == "tiny":
        return None, "not run — the tiny model exists only in this venv"
    if not py.exists():
        return None, f"not run — no venv at {py} (see this file's docstring to create it)"
    if not DEMO_SAE.exists() or args.random_sae:
        return None, "not run — needs the demo SAE folder on disk"
    from inference_worker.models import smollm2_cache_dir

    with tempfile.TemporaryDirectory(prefix="np-saedash-") as tmp:
        cfg = {k: (str(v) if not isinstance(v, (int, float, bool, str, type(None), list)) else v)
               for k, v in model.cfg.to_dict().items()}
        Path(tmp, "tl_config.json").write_text(json.dumps(cfg, default=str))
        torch.save(seqs.to(torch.int32), Path(tmp, "tokens.pt"))
        cmd = [str(py), str(Path(__file__).with_name("saedashboard_baseline.py")),
               "--model-dir", str(smollm2_cache_dir()), "--tl-config", str(Path(tmp, "tl_config.json")),
               "--sae-dir", str(DEMO_SAE), "--tokens", str(Path(tmp, "tokens.pt")), "--dtype", args.dtype,
               "--threads", str(args.threads), "--skip-positions", "2",
               "--features-at-a-time", str(args.saedashboard_features_at_a_time),
               "--outputs-dir", str(Path(tmp, "out"))]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={
            "PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled"})
    if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"not run — exit {proc.returncode}: {err[:300]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["seconds"], (f"SAEDashboard 0.8 (own venv), NeuronpediaRunner loop, "
                            f"{out['batches']} feature batches of {args.saedashboard_features_at_a_time}, "
                            f"{out['json_bytes'] / 1e6:.0f} MB JSON, model load excluded")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    p.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    p.add_argument("--tokens", type=int, default=32_768)
    p.add_argument("--context-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--d-sae", type=int, default=4608)
    p.add_argument("--naive", action="store_true", help="also time a naive per-feature loop")
    p.add_argument("--naive-features", type=int, default=256, help="features the naive loop runs")
    p.add_argument("--random-sae", action="store_true")
    p.add_argument("--umap", action="store_true", help="also time the UMAP step")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--saedashboard-python", default=str(SAEDASHBOARD_PYTHON))
    p.add_argument("--saedashboard-features-at-a-time", type=int, default=1024,
                   help="SAEDashboard feature batch (its model activations are cached after the first)")
    p.add_argument("--no-saedashboard", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, source, sae_note = build(args)
    seqs = sequences(model, args.tokens, args.context_size)
    n_tok, d = seqs.numel(), source.d_sae
    cfg = dash.DashboardConfig(umap=False, eval_sequences=0)
    floor(model, source, seqs[: args.batch_size], args.batch_size)  # warm-up
    dash._logit_kernel()  # numba: load (or compile once and cache) the logit kernel
    t_floor, _ = floor(model, source, seqs, args.batch_size)
    t0 = time.perf_counter()
    gen = dash.DashboardGenerator(model, source, args.context_size, cfg)
    dash.run_stream(gen, dash.iter_batches(seqs, args.batch_size))
    t_stream = time.perf_counter() - t0
    result = gen.finalize()
    t_final = time.perf_counter() - t0
    n_examples = sum(len(result.example_batch(lo, min(lo + 2000, d))) for lo in range(0, d, 2000))
    t_vec = time.perf_counter() - t0
    t_copy, copy_bytes, copy_err = copy_payload_seconds(result)
    rows = [("floor: model to hook + encoder", t_floor), ("vectorised stream (no finalize)", t_stream),
            ("stream + finalize (logits, hists, cos-sim, bins)", t_final),
            ("stream + finalize + all examples (columns)", t_vec)]
    if t_copy is not None:
        rows.append(("WHOLE: + binary COPY payload of all examples", t_vec + t_copy))
    t_whole = t_vec + (t_copy or 0.0)
    if args.naive:
        t_cache, kept = floor(model, source, seqs, args.batch_size, keep=True)
        n_naive = min(args.naive_features, d)
        t_loop = naive(kept, seqs, n_naive, cfg)
        rows.append((f"naive per-feature loop (x{d / n_naive:.0f} extrapolated)",
                     t_cache + t_loop * d / n_naive))
    if args.umap:
        t1 = time.perf_counter()
        dash._umap(source.W_dec.float(), dash.DashboardConfig())
        rows.append(("UMAP of decoder directions (incl. numba compile)", time.perf_counter() - t1))
    t_sd, sd_note = (None, "not run — --no-saedashboard") if args.no_saedashboard else saedashboard(
        args, model, seqs)
    if t_sd is not None:
        rows.append(("SAEDashboard (same model, SAE, tokens)", t_sd))
    print(f"\nmodel {args.model} ({args.dtype}), {sae_note}, {n_tok:,} tokens "
          f"({len(seqs)} x {args.context_size}), batch {args.batch_size}, {args.threads} threads")
    print(f"{'method':<52} {'wall s':>8} {'tokens/s':>10} {'features/s':>11} {'x floor':>8}")
    for name, secs in rows:
        print(f"{name:<52} {secs:>8.2f} {n_tok / secs:>10,.0f} {d / secs:>11,.1f} {secs / t_floor:>8.2f}")
    print(f"dead features: {int(result.is_dead.sum())}/{d}; examples: {n_examples:,} "
          f"({cfg.top_k} top + {cfg.n_bins} x {cfg.bin_size} sampled per feature); COPY payload "
          + (f"{copy_bytes / 1e6:.0f} MB" if t_copy is not None else f"not timed ({copy_err})"))
    if t_sd is not None:
        print(f"SAEDashboard: {t_sd:.2f} s — ours (whole) is {t_sd / t_whole:.1f}x faster; {sd_note}")
    else:
        print(f"SAEDashboard: {sd_note}")


if __name__ == "__main__":
    main()
