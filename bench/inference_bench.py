"""Inference latency: the whole queue path vs the same computation in-process.

    .venv/bin/python bench/inference_bench.py [--runs 15]

Starts (if needed) the embedded services, registers the demo source, starts a real inference worker
(`manage.py inference_worker` with the demo config: SmolLM2-135M-Instruct + the 15-res-demo SAE) and
measures median latencies of activation-single (64 tokens), search-all and 10-token steering through
web side -> Redis -> worker -> result, next to the same operation called in this process. Then it
checks that search-all over N sources costs about one forward pass + N SAE encodes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuronpedia.settings.local")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT_64 = ("The old church stood at the end of the village road, and every morning the bells rang "
             "out across the quiet fields while farmers walked to work and children ran to school "
             "under a grey sky")


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def start_worker() -> subprocess.Popen:
    from inference import client as inference
    from inference import demo

    proc = subprocess.Popen([sys.executable, "manage.py", "inference_worker", "--config",
                             str(demo.DEMO_CONFIG), "--name", "bench-worker", "--loglevel", "WARNING"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not inference.live_hosts(demo.DEMO_MODEL_ID).filter(name="bench-worker").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the inference worker did not start (run it by hand to see why)")
        time.sleep(0.5)
    return proc


def queue_vs_inprocess(runs: int) -> list[tuple[str, float, float]]:
    from inference import client as inference
    from inference import demo
    from inference.tasks import operations as tasks

    os.environ[tasks.CONFIG_ENV] = str(demo.DEMO_CONFIG)
    tasks.loaded()  # the same model + SAE in this process
    ops = {
        "activation-single (64 tok)": ("activation_single",
                                       {"prompt": PROMPT_64, "source": demo.DEMO_SOURCE, "index": 7}),
        "search-all (1 source)": ("search_all", {"prompt": PROMPT_64, "sourceSet": demo.DEMO_SET,
                                                 "numResults": 25}),
        "steer, 10 tokens": ("steer", {"prompt": "The weather today is",
                                       "features": [{"source": demo.DEMO_SOURCE, "index": 7,
                                                     "strength": 20.0}],
                                       "nCompletionTokens": 10, "temperature": 0.5, "seed": 16}),
    }
    rows = []
    for label, (op, payload) in ops.items():
        local, remote = paired_median_ms(
            lambda op=op, payload=payload: tasks.OPERATIONS[op](payload),
            lambda op=op, payload=payload: inference.run_inference(demo.DEMO_MODEL_ID, op, payload),
            runs)
        rows.append((label, local, remote))
    return rows


def paired_median_ms(local, remote, runs: int) -> tuple[float, float]:
    """Alternate the two calls so both see the same background load (the machine may be shared)."""
    local()
    remote()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for fn, out in ((local, samples[0]), (remote, samples[1])):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples[0]), statistics.median(samples[1])


def search_all_scaling(runs: int) -> list[tuple[int, float, float]]:
    """search_all over N sources vs one forward pass to the deepest hook + N encodes."""
    import torch
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    from inference.tasks import operations as tasks
    from inference_worker.ops import capture_hooks, search_all, tokenize
    from inference_worker.saes import SourceRegistry, source_from_sae

    model = tasks.loaded().model
    layers = [3, 7, 11, 15, 19, 23, 27, 29]
    sources = []
    for layer in layers:
        cfg = TopKSAEConfig(d_in=576, d_sae=4608, k=32,
                            metadata=SAEMetadata(hook_name=f"blocks.{layer}.hook_resid_post"))
        sources.append(source_from_sae(f"{layer}-bench", TopKSAE(cfg).eval()))
    tokens = tokenize(model, PROMPT_64)
    out = []
    for n in (1, 4, 8):
        chosen = sources[-n:] if n < len(sources) else sources
        registry = SourceRegistry(chosen)
        hooks = [s.hook_name for s in chosen]
        full = median_ms(lambda registry=registry: search_all(model, registry, PROMPT_64,
                                                              source_set="bench", num_results=25), runs)

        def parts(hooks=hooks, chosen=chosen) -> None:
            acts = capture_hooks(model, tokens, hooks)
            with torch.inference_mode():
                for s in chosen:
                    s.encode(acts[s.hook_name])

        out.append((n, full, median_ms(parts, runs)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    from neuronpedia.preflight import ensure_services

    ensure_services()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("create_demo_source", stdout=open(os.devnull, "w"))  # noqa: SIM115
    worker = start_worker()
    try:
        rows = queue_vs_inprocess(args.runs)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    print(f"\nQueue path vs in-process (median of {args.runs}, ms, CPU, {torch.get_num_threads()} threads)")
    print(f"| {'operation':<28} | {'in-process':>10} | {'via queue':>10} | {'overhead':>9} | target |")
    print(f"|{'-' * 30}|{'-' * 12}|{'-' * 12}|{'-' * 11}|--------|")
    for label, local, remote in rows:
        extra = remote - local
        ok = extra <= max(30.0, 0.15 * local)
        print(f"| {label:<28} | {local:>10.1f} | {remote:>10.1f} | {extra:>+8.1f} | "
              f"{'met' if ok else 'MISSED'} |")
    scaling = search_all_scaling(args.runs)
    print("\nsearch-all over N sources vs one forward pass + N SAE encodes (median ms)")
    print(f"| {'N':>2} | {'search_all':>10} | {'forward+encodes':>15} | {'ratio':>5} | target <= 1.3 |")
    print(f"|----|{'-' * 12}|{'-' * 17}|-------|---------------|")
    for n, full, parts in scaling:
        print(f"| {n:>2} | {full:>10.1f} | {parts:>15.1f} | {full / parts:>5.2f} | "
              f"{'met' if full <= 1.3 * parts else 'MISSED':<13} |")


if __name__ == "__main__":
    main()
