# ruff: noqa: E501  (table rows)
"""Browse pages (issue 18) at >= 1M features: the feature page with its extras slot on and off
(`?noextras=1`, same run, interleaved), the lazily loaded extras panel, and the release, source-set (with
its cross-layer browser and UMAP), model and comparison pages.

    flock /tmp/np-bench.lock .venv/bin/python bench/browse_bench.py            # 40 x 25,000 features
    .venv/bin/python bench/browse_bench.py --sources 4 --per-source 5000 --bench-features 200 --pages 100

Reuses bench/feature_page_bench.py's database (own database per run, dropped at exit) and synthetic load,
then adds a `core` eval per source (the dashboards job's layout) and, for the benchmarked features,
cross-source similar rows against 5 other sources (what `compute_similar_features` stores). Times each GET
server-side through Django's test Client (full middleware and templates, DEBUG off).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import feature_page_bench as fpb  # noqa: E402

from bench._scratch_db import scratch_database  # noqa: E402


def add_browse_data(args: argparse.Namespace, rng: np.random.Generator) -> float:
    from features.models import CrossSourceSimilarity, Eval, Feature, Source

    t0 = time.perf_counter()
    sources = list(Source.objects.filter(model_id=fpb.MODEL_ID).order_by("layer"))
    Eval.objects.bulk_create([Eval(source=s, type="core", output={
        "sparsity": {"l0": float(rng.uniform(20, 120))}, "misc": {"frac_dead": float(rng.uniform(0, 0.05)), "n_tokens": 204_800},
        "reconstruction_quality": {"explained_variance": float(rng.uniform(0.6, 0.9))},
        "model_performance_preservation": {"ce_loss_score": float(rng.uniform(0.6, 0.99))}}) for s in sources])
    rows = []
    for url in args.urls:
        _, _, source_name, index = url.split("/")
        feature = Feature.objects.only("id").get(source__model_id=fpb.MODEL_ID, source__name=source_name, index=int(index))
        others = [s for s in sources if s.name != source_name][:5]
        rows += [CrossSourceSimilarity(feature=feature, other_source=o, indices=rng.integers(0, args.per_source, 10).tolist(),
                                       values=np.sort(rng.uniform(0.1, 0.9, 10))[::-1].round(4).tolist()) for o in others]
    CrossSourceSimilarity.objects.bulk_create(rows, batch_size=5000)
    return time.perf_counter() - t0


def timed(client: Any, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=40)
    parser.add_argument("--per-source", type=int, default=25_000)
    parser.add_argument("--bench-features", type=int, default=300)
    parser.add_argument("--pages", type=int, default=200, help="timed feature pages per mode")
    parser.add_argument("--other-gets", type=int, default=30, help="timed GETs of each browse page")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.pages = min(args.pages, args.bench_features - args.warmup)
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    scratch_database(fpb.DB_NAME, keep=args.keep)
    t0 = time.perf_counter()
    fpb.load(args, rng)
    extra = add_browse_data(args, rng)
    load_s = time.perf_counter() - t0
    from django.db import connection
    from django.test import Client

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT count(*) FROM features_feature")
        n_features = cursor.fetchone()[0]
    client = Client()
    urls = list(args.urls)
    random.shuffle(urls)
    for url in urls[: args.warmup]:
        timed(client, url)
        timed(client, url + "/panel/extras")
    results: dict[str, list[float]] = {"feature page, extras slot on": [], "feature page, extras slot off (?noextras=1)": [],
                                       "extras panel (/panel/extras)": []}
    for n, url in enumerate(urls[args.warmup: args.warmup + args.pages]):
        modes = [("feature page, extras slot on", url), ("feature page, extras slot off (?noextras=1)", url + "?noextras=1")]
        for name, target in modes if n % 2 == 0 else modes[::-1]:
            results[name].append(timed(client, target))
        results["extras panel (/panel/extras)"].append(timed(client, url + "/panel/extras"))
    set_url = f"/{fpb.MODEL_ID}/{fpb.SET_NAME}"
    from features import browse
    from features.models import Source

    set_sources = list(Source.objects.filter(model_id=fpb.MODEL_ID).order_by("layer", "name"))
    cursor = ""
    for _ in range(40):  # the cursor of page 41 (2,000 rows in)
        cursor = browse.set_feature_page(set_sources, sort="max", after=cursor)[1]
    pages = {"release page": "/bench-release", "source-set page (all layers)": set_url,
             "set browser, sort by max": set_url + "?panel=browser&sort=max",
             "set browser, by max, page 41 (keyset cursor)": set_url + "?panel=browser&sort=max&" + urlencode({"after": cursor}),
             "set UMAP panel": set_url + "?panel=umap", "model page": f"/{fpb.MODEL_ID}/", "compare page": "/compare"}
    for name, url in pages.items():
        timed(client, url)  # warm
        results[name] = [timed(client, url) for _ in range(args.other_gets)]
    import os

    print(f"\nload average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {n_features:,} features; load {load_s:.0f} s (browse rows {extra:.1f} s)")
    print(f"{'page':<46}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for name, ms in results.items():
        p50, p95 = np.percentile(ms, [50, 95])
        print(f"{name:<46}{len(ms):>5}{p50:9.1f}{p95:9.1f}{max(ms):9.1f}")


if __name__ == "__main__":
    main()
