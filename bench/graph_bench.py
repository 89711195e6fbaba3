# ruff: noqa: E501  (table rows)
"""Attribution-graph generation: our job vs circuit-tracer called directly, same prompts, same transcoders,
same process, interleaved (issue 17).

    .venv/bin/python bench/graph_bench.py                       # SmolLM2 + plt-demo (trained set if present)
    .venv/bin/python bench/graph_bench.py --repeats 3 --prompts "The capital of France is" "1, 2, 3,"
    .venv/bin/python bench/graph_bench.py --transcoders ~/.cache/neuronpedia/transcoders/smollm2-135m-instruct/plt-demo/current

Runs in its own database (created, migrated, dropped at exit: bench/_scratch_db.py).
The model and the transcoder set are loaded once, the replacement model built once (reported on its own:
a worker does it once per process and set version), and one warm-up attribution runs before timing.
Then, per prompt and repeat, in alternating order:

- **circuit-tracer**: `circuit_tracer.attribution.attribute(prompt, model, ...)` on the same replacement
  model, and separately attribute + circuit-tracer's pruning and graph-JSON pieces (what its
  `create_graph_files` does, without writing files);
- **our job**: `graphs.services.request_graph` (Graph + Job rows) then the worker task's body
  `inference.tasks.graphs.run_graph_job` (claim, progress writes per phase, prompt check,
  attribute, prune + JSON, store in PostgreSQL with compressed links, job DONE).

Overhead = median(our job) / median(direct) - 1. Transcoders: `--transcoders` PATH, else the project's
trained plt-demo set when `current` exists, else the random test set of tests/graphs/smollm2_worker.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = ["The capital of France is", "Paris is the capital of"]
MODEL_ID = "smollm2-135m-instruct"


def _transcoders(arg: str | None) -> Path:
    if arg:
        return Path(arg).expanduser()
    trained = Path.home() / ".cache/neuronpedia/transcoders" / MODEL_ID / "plt-demo" / "current"
    if (trained / ".complete").exists():
        return trained
    from tests.graphs.smollm2_worker import transcoders_path

    return transcoders_path()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", nargs="+", default=PROMPTS)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--transcoders", default=None, help="a transcoder set path (default: see above)")
    ap.add_argument("--max-feature-nodes", type=int, default=2000)
    ap.add_argument("--max-n-logits", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()

    from bench._scratch_db import scratch_database

    scratch_database(f"np_graph_bench_{os.getpid()}", allow_async_unsafe=True)
    logging.getLogger("circuit_tracer").setLevel(logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    from features.models import Model, SourceSet
    from graphs import services
    from graphs.models import Graph
    from inference.tasks import graphs as graph_tasks
    from inference_worker.attribution import GraphParams, graph_to_json, prompt_text, run_attribution
    from inference_worker.config import WorkerConfig
    from inference_worker.runtime import get_worker
    from neuronpedia.celery import app

    app.send_task = lambda *a, **kw: None  # the job body runs here, in this process
    path = _transcoders(args.transcoders)
    t0 = time.perf_counter()
    worker = get_worker(WorkerConfig.from_dict({
        "model_id": MODEL_ID, "model_source": "smollm2", "device": "auto",
        "transcoder_sets": [{"name": "plt-demo", "path": str(path)}]}))
    load_s = time.perf_counter() - t0
    tset = worker.transcoder_set("plt-demo")
    t0 = time.perf_counter()
    rm = worker.replacement_model("plt-demo")
    rm_s = time.perf_counter() - t0
    model = Model.objects.create(id=MODEL_ID, display_name=MODEL_ID, layers=30, dimension=576, instruct=True)
    SourceSet.objects.create(model=model, name="plt-demo", type="transcoder")
    gp = services.GenerationParams(max_n_logits=args.max_n_logits, max_feature_nodes=args.max_feature_nodes,
                                   batch_size=args.batch_size)
    params = {**gp.to_dict()}

    def direct(prompt: str, with_json: bool) -> tuple[float, dict[str, Any]]:
        p = GraphParams(prompt=prompt, **params)
        t = time.perf_counter()
        graph = run_attribution(rm, prompt_text(rm.tokenizer, prompt, False), p)
        info = {"active": int(len(graph.active_features)), "tokens": len(graph.input_tokens)}
        if with_json:
            data = graph_to_json(graph, rm.tokenizer, slug="bench", scan="plt-demo",
                                 node_threshold=p.node_threshold, edge_threshold=p.edge_threshold)
            info.update(nodes=len(data["nodes"]), links=len(data["links"]))
        return time.perf_counter() - t, info

    counter = [0]

    def ours(prompt: str) -> tuple[float, dict[str, Any]]:
        counter[0] += 1
        Graph.objects.filter(model=model).delete()  # not the cache: a fresh generation every time
        t = time.perf_counter()
        graph, created = services.request_graph(model=model, prompt=prompt, params=gp,
                                                slug=f"bench-{counter[0]}")
        assert created
        assert graph_tasks.run_graph_job(graph.job_id, worker=worker)
        elapsed = time.perf_counter() - t
        graph.refresh_from_db()
        return elapsed, {"nodes": graph.n_nodes, "links": graph.n_links, **graph.job.result}

    print(f"device {worker.device}, torch threads {torch.get_num_threads()}, load average "
          f"{os.getloadavg()[0]:.1f} at start; transcoders {tset.path} ({tset.n_layers} x {tset.d_transcoder:,})",
          flush=True)
    print(f"model + transcoders loaded in {load_s:.1f} s; replacement model built in {rm_s:.1f} s (once per "
          f"process and set version, not in the rows below)", flush=True)
    warm_s, warm = direct(args.prompts[0], False)  # warm-up
    print(f"warm-up attribution: {warm_s:.1f} s ({warm['active']:,} active features)", flush=True)
    rows = []
    for prompt in args.prompts:
        times: dict[str, list[float]] = {"attribute": [], "attribute+json": [], "job": []}
        inside: list[float] = []  # per job: its time outside circuit-tracer's attribute (same run)
        info: dict[str, Any] = {}
        for r in range(args.repeats):
            order = ["attribute", "attribute+json", "job"]
            if r % 2:
                order.reverse()
            for kind in order:
                if kind == "job":
                    s, info = ours(prompt)
                    inside.append(s - info["attribution_s"])
                else:
                    s, extra = direct(prompt, kind == "attribute+json")
                    info.setdefault("active", extra["active"])
                times[kind].append(s)
                print(f"  {prompt!r} {kind}: {s:.2f} s", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        med["outside"] = statistics.median(inside)
        med["attribution_in_job"] = info["attribution_s"]
        rows.append((prompt, info, med))
    print(f"\nload average at end {os.getloadavg()[0]:.1f}; medians of {args.repeats} run(s) each; "
          f"max_feature_nodes {args.max_feature_nodes}, max_n_logits {args.max_n_logits}, batch {args.batch_size}\n")
    print("| prompt | tokens | active features | nodes / links | circuit-tracer `attribute` | attribute + JSON | our job (incl. store) | overhead vs attribute | vs attribute + JSON | job time outside `attribute` |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    tot = {"attribute": 0.0, "attribute+json": 0.0, "job": 0.0}
    for prompt, info, med in rows:
        for k in tot:
            tot[k] += med[k]
        print(f"| {prompt} | {info.get('n_tokens', '?')} | {info.get('active_features', '?'):,} | "
              f"{info.get('nodes')} / {info.get('links')} | {med['attribute']:.2f} s | {med['attribute+json']:.2f} s | "
              f"{med['job']:.2f} s | {100 * (med['job'] / med['attribute'] - 1):+.1f}% | "
              f"{100 * (med['job'] / med['attribute+json'] - 1):+.1f}% | {med['outside']:.2f} s "
              f"({100 * med['outside'] / med['attribute']:.1f}% of `attribute`) |")
    print(f"| **all** | | | | {tot['attribute']:.2f} s | {tot['attribute+json']:.2f} s | {tot['job']:.2f} s | "
          f"**{100 * (tot['job'] / tot['attribute'] - 1):+.1f}%** | {100 * (tot['job'] / tot['attribute+json'] - 1):+.1f}% | "
          f"{sum(m['outside'] for _, _, m in rows):.2f} s |")
    print("\n'job time outside attribute' = the job's wall time minus circuit-tracer's attribute inside it (same "
          "call, so the machine's load cancels): request rows, claim, progress writes, prompt check, pruning + "
          "graph JSON, storing.")


if __name__ == "__main__":
    main()
