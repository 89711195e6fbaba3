# ruff: noqa: E501  (table rows)
"""Feature page render time on a database holding >= 1M features (issue 6), with a baseline in the same run.

    flock /tmp/np-bench.lock .venv/bin/python bench/feature_page_bench.py            # 40 x 25,000 features
    .venv/bin/python bench/feature_page_bench.py --sources 4 --per-source 5000 --bench-features 200 --pages 100

Runs in its own database (`np_feature_page_bench_<pid>`: created, migrated, dropped at exit; `--keep` keeps it).
Loads `--sources` x `--per-source` Feature rows with binary COPY (realistic dashboard arrays: 50-bin
density and logit histograms, 10 top +/- logits, 25 cos-sim neighbours, neuron alignment / correlated
neurons), one explanation per feature (so cos-sim neighbours have names), and for `--bench-features`
random features: 100 activation examples of 128 tokens (10 top + 9 quantile bins) and 3 explanations with
2 scores each (30-row per-example breakdowns, 20 activating + 10 not, as autointerp.scorers stores). Then GETs `/{model}/{source}/{index}` through Django's test
Client (full middleware + template rendering, DEBUG off) for `--pages` random benchmarked features after a
warm-up, timing each request server-side (no network), and counts the SQL queries per page.

Baseline, same pages, same run, requests interleaved: the page view with `selectors.get_feature` replaced
by the naive ORM pattern (a bare `Feature.objects.filter(...).first()`; source, source set, activations,
explanations and each explanation's scores load lazily on first touch, i.e. N+1 over explanations).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._scratch_db import scratch_database  # noqa: E402

DB_NAME = f"np_feature_page_bench_{os.getpid()}"  # per run: concurrent runs never collide
MODEL_ID = "bench-model"
SET_NAME = "res-bench"
CONTEXT = 128
EXAMPLES = 100
POOL = 512  # distinct dashboard-array variants, cycled over the rows


# --- synthetic data --------------------------------------------------------------------------------

def _vocab(rng: np.random.Generator, size: int = 3000) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = [" " + "".join(rng.choice(letters, size=int(rng.integers(2, 9)))) for _ in range(size)]
    return [*words, ".", ",", "\n", '"', "<", "&", "é", "日本"]


def _encoded(column_type: str, value: Any) -> bytes:
    """A field in binary COPY form: int32 length + data (the project's own encoders)."""
    from transfer.importer.copy import ENCODERS, NULL

    if value is None:
        return NULL
    data = ENCODERS[column_type](value)
    return struct.pack(">i", len(data)) + data


def _dashboard_arrays(rng: np.random.Generator, vocab: list[str], width: int) -> dict[str, Any]:
    heights = np.sort(rng.exponential(1.0, 50))[::-1] * 1000
    logits = rng.normal(0, 0.3, 50)
    return {
        "is_dead": False,
        "freq_hist_data_bar_heights": heights.astype(np.float32), "freq_hist_data_bar_values": np.linspace(0.1, 12, 50, dtype=np.float32),
        "logits_hist_data_bar_heights": (np.exp(-logits**2) * 500).astype(np.float32), "logits_hist_data_bar_values": np.sort(logits).astype(np.float32),
        "pos_str": list(rng.choice(vocab, 10)), "pos_values": np.sort(rng.uniform(0.3, 1.5, 10))[::-1].astype(np.float32),
        "neg_str": list(rng.choice(vocab, 10)), "neg_values": np.sort(rng.uniform(-1.5, -0.3, 10)).astype(np.float32),
        "topk_cos_sim_indices": rng.integers(0, width, 25).astype(np.int32), "topk_cos_sim_values": np.sort(rng.uniform(0.2, 1.0, 25))[::-1].astype(np.float32),
        "neuron_alignment_indices": rng.integers(0, 768, 3).astype(np.int32), "neuron_alignment_values": rng.normal(0, 0.2, 3).astype(np.float32),
        "neuron_alignment_l1": rng.uniform(0, 0.1, 3).astype(np.float32),
        "correlated_neurons_indices": rng.integers(0, 768, 3).astype(np.int32), "correlated_neurons_pearson": rng.uniform(0, 0.5, 3).astype(np.float32),
        "correlated_neurons_l1": rng.uniform(0, 0.1, 3).astype(np.float32), "decoder_weights_dist": np.zeros(0, np.float32),
        "correlated_features_indices": rng.integers(0, width, 3).astype(np.int32), "correlated_features_pearson": rng.uniform(0, 0.5, 3).astype(np.float32),
        "correlated_features_l1": rng.uniform(0, 0.1, 3).astype(np.float32), "creator_external_id": None, "source_set_name": SET_NAME,
        "has_vector": False, "vector": None, "vector_label": "", "vector_default_steer_strength": None,
        "hook_name": "", "creator_id": None, "umap_log_feature_sparsity": float(rng.uniform(-6, -2)),
    }


def _copy_raw(table: str, columns: list[str], blocks: Any) -> None:
    """Binary COPY of pre-encoded rows (each row: int16 field count + encoded fields)."""
    from django.db import connection

    from transfer.importer.copy import SIGNATURE, TRAILER

    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(SIGNATURE)
        for block in blocks:
            copy.write(block)
        copy.write(TRAILER)


def load(args: argparse.Namespace, rng: np.random.Generator) -> dict[str, float]:
    from datetime import UTC, datetime

    from django.db import connection, transaction

    from features.models import (
        Explanation,
        ExplanationModel,
        ExplanationScore,
        ExplanationScoreModel,
        ExplanationScoreType,
        ExplanationType,
        Feature,
        Model,
        Source,
        SourceRelease,
        SourceSet,
    )
    from transfer.importer.copy import copy_type

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    release = SourceRelease.objects.create(name="bench-release", description="synthetic")
    model = Model.objects.create(id=MODEL_ID, layers=max(args.sources, 1), dimension=768)
    source_set = SourceSet.objects.create(model=model, name=SET_NAME, release=release)
    sources = Source.objects.bulk_create([
        Source(model=model, source_set=source_set, name=f"{layer}-{SET_NAME}", layer=layer,
               num_features=args.per_source, has_dashboards=True) for layer in range(args.sources)])
    ExplanationType.objects.create(name="oai_token-act-pair")
    ExplanationModel.objects.create(name="gpt-4o-mini")
    ExplanationScoreModel.objects.create(name="gpt-4o-mini")
    for name in ("eleuther_fuzz", "eleuther_recall"):
        ExplanationScoreType.objects.create(name=name)

    # Features: per-row scalars packed here, every other column from a pool of pre-encoded variants.
    vocab = _vocab(rng)
    fields = {f.column: f for f in Feature._meta.concrete_fields}
    per_row = ["source_id", "index", "max_act_approx", "frac_nonzero", "umap_x", "umap_y", "umap_cluster"]
    pooled_cols = [c for c in fields if c not in (*per_row, "id", "created_at")]
    created = datetime(2025, 1, 1, tzinfo=UTC)
    pool = []
    for _ in range(POOL):
        arrays = _dashboard_arrays(rng, vocab, args.per_source)
        pool.append(b"".join(_encoded(copy_type(fields[c]), arrays[c]) for c in pooled_cols)
                    + _encoded("timestamptz", created))
    columns = per_row + pooled_cols + ["created_at"]
    row_struct = struct.Struct(">h" + "".join(
        "i" + {"int8": "q", "int4": "i", "float4": "f"}[copy_type(fields[c])] for c in per_row))
    sizes = [struct.calcsize(">" + {"int8": "q", "int4": "i", "float4": "f"}[copy_type(fields[c])]) for c in per_row]
    ncols = len(columns)

    def feature_blocks() -> Any:
        n = args.per_source
        for source in sources:
            maxact = rng.uniform(1, 30, n).astype(np.float32)
            frac = rng.uniform(0, 0.01, n).astype(np.float32)
            ux, uy = rng.normal(0, 5, n).astype(np.float32), rng.normal(0, 5, n).astype(np.float32)
            cluster = rng.integers(0, 50, n)
            pick = rng.integers(0, POOL, n)
            parts = []
            for i in range(n):
                values = (source.pk, i, float(maxact[i]), float(frac[i]), float(ux[i]), float(uy[i]), int(cluster[i]))
                flat = [ncols]
                for size, value in zip(sizes, values, strict=True):
                    flat += (size, value)
                parts.append(row_struct.pack(*flat))
                parts.append(pool[pick[i]])
            yield b"".join(parts)

    with transaction.atomic():
        _copy_raw("features_feature", columns, feature_blocks())
    timings["features COPY"] = time.perf_counter() - t0

    # One explanation per feature (server side), so cos-sim neighbours have names on the page.
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO features_explanation (feature_id, external_id, description, type_id, explanation_model_id,"
            " explainer_settings, embedder, score_v1, score_v2, notes, method, score_type_name, created_at)"
            " SELECT id, '', 'mentions of word ' || (id % 9973) || ' in legal or technical contexts',"
            " 'oai_token-act-pair', 'gpt-4o-mini', '{}', '', 0.3, (id % 100) / 100.0, '', '', '', now() FROM features_feature")
    timings["explanations INSERT…SELECT"] = time.perf_counter() - t0

    # Benchmarked features: 100 examples x 128 tokens, 3 more explanations with 2 scores each.
    t0 = time.perf_counter()
    all_sources = [(s.pk, s.name) for s in sources]
    chosen = set()
    while len(chosen) < args.bench_features:
        chosen.add((random.choice(all_sources), random.randrange(args.per_source)))
    keys = sorted(chosen)
    with connection.cursor() as cursor:
        cursor.execute("SELECT f.source_id, f.index, f.id FROM features_feature f JOIN unnest(%s::bigint[], %s::int[]) k(s, i)"
                       " ON f.source_id = k.s AND f.index = k.i", [[s for (s, _), _ in keys], [i for _, i in keys]])
        ids = {(s, i): fid for s, i, fid in cursor.fetchall()}
    token_pool = [[vocab[j] for j in rng.integers(0, len(vocab), CONTEXT)] for _ in range(256)]
    encoded_tokens = [_encoded("text[]", toks) for toks in token_pool]
    act_cols = ["feature_id", "external_id", "tokens", "values", "max_value", "max_value_token_index", "min_value",
                "bin_min", "bin_max", "bin_contains", "qualifying_token_index", "data_source", "data_index",
                "dfa_values", "dfa_target_index", "dfa_max_value", "creator_id", "created_at"]
    empty_text, empty_real = _encoded("text", ""), _encoded("float4[]", np.zeros(0, np.float32))
    null, ts = _encoded("int8", None), _encoded("timestamptz", created)

    def activation_blocks() -> Any:
        for fid in ids.values():
            top = float(rng.uniform(5, 30))
            parts = []
            for k in range(EXAMPLES):
                values = np.zeros(CONTEXT, np.float32)
                hot = rng.integers(0, CONTEXT, 6)
                if k < 10:  # top group
                    peak, bmin, bmax, share = top * (1 - 0.02 * k), -1.0, top, -1.0
                else:  # 9 quantile bins of 10 examples, highest first
                    b = (k - 10) // 10
                    hi, lo = top * (1 - b / 9), top * (1 - (b + 1) / 9)
                    peak, bmin, bmax, share = float(rng.uniform(lo, hi)), lo, hi, 0.1
                values[hot] = rng.uniform(0, peak, 6)
                values[hot[0]] = peak
                parts += [struct.pack(">h", len(act_cols)), _encoded("int8", fid), empty_text,
                          encoded_tokens[int(rng.integers(0, 256))], _encoded("float4[]", values),
                          _encoded("float4", peak), _encoded("int4", int(hot[0])), _encoded("float4", 0.0),
                          _encoded("float4", bmin), _encoded("float4", bmax), _encoded("float4", share),
                          null, empty_text, _encoded("int8", int(rng.integers(0, 10**7))), empty_real, null, null,
                          null, ts]
            yield b"".join(parts)

    with transaction.atomic():
        _copy_raw("features_activation", act_cols, activation_blocks())
    Explanation.objects.bulk_create([
        Explanation(feature_id=fid, description=f"{label} {vocab[int(rng.integers(0, 3000))].strip()} in code comments",
                    type_id="oai_token-act-pair", explanation_model_id="gpt-4o-mini", score_v1=0.5, score_v2=0.6 + j / 10)
        for fid in ids.values() for j, label in enumerate(("tokens after", "the word"))], batch_size=2000)
    own = list(Explanation.objects.filter(feature_id__in=list(ids.values())).values_list("id", flat=True))

    def breakdown() -> list[dict[str, Any]]:
        return [{"text": "".join(random.choice(token_pool)[:24]), "activating": i % 2 == 0,
                 "prediction": bool(rng.integers(0, 2)), "correct": bool(rng.integers(0, 2)), "distance": i // 2}
                for i in range(30)]

    ExplanationScore.objects.bulk_create([
        ExplanationScore(explanation_id=eid, score_type_id=st, score_model_id="gpt-4o-mini", status="DONE",
                         value=float(rng.uniform(0.5, 0.95)),
                         json_details={"breakdown": breakdown(), "n_examples": 30, "metric": "balanced_accuracy"})
        for eid in own for st in ("eleuther_fuzz", "eleuther_recall")], batch_size=2000)
    timings["bench features: acts+expl+scores"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    timings["VACUUM ANALYZE"] = time.perf_counter() - t0
    name = {pk: n for pk, n in all_sources}
    args.urls = [f"/{MODEL_ID}/{name[s]}/{i}" for (s, i) in ids]
    return timings


# --- the baseline selector -------------------------------------------------------------------------

def naive_get_feature(model_id: str, source_name: str, index: int) -> Any:
    """What an ORM user writes without select_related/prefetch_related: relations load on first touch."""
    from django.http import Http404

    from features.models import Feature

    feature = Feature.objects.filter(source__model_id=model_id, source__name=source_name, index=index).first()
    if feature is None:
        raise Http404("not found")
    return feature


def measure(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from features import selectors

    real_get_feature = selectors.get_feature
    modes = {"optimized (selectors.get_feature)": real_get_feature, "baseline: naive lazy ORM (N+1)": naive_get_feature}
    client = Client()
    urls = list(args.urls)
    random.shuffle(urls)
    warm, timed = urls[: args.warmup], urls[args.warmup: args.warmup + args.pages]
    sql_ms = [0.0]

    def timer(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_ms[0] += (time.perf_counter() - started) * 1000

    results: dict[str, dict[str, Any]] = {m: {"ms": [], "sql_ms": [], "queries": [], "bytes": 0} for m in modes}
    mode_names = list(modes)
    for stage, batch in (("warm", warm), ("timed", timed)):
        for n, url in enumerate(batch):
            order = mode_names if n % 2 == 0 else mode_names[::-1]
            for mode in order:
                selectors.get_feature = modes[mode]
                sql_ms[0] = 0.0
                with connection.execute_wrapper(timer):
                    started = time.perf_counter()
                    response = client.get(url)
                    elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, (url, response.status_code)
                if stage == "timed":
                    results[mode]["ms"].append(elapsed)
                    results[mode]["sql_ms"].append(sql_ms[0])
                    results[mode]["bytes"] = max(results[mode]["bytes"], len(response.content))
    for mode in mode_names:  # query counts: a separate pass (capturing forces the debug cursor)
        selectors.get_feature = modes[mode]
        for url in timed[: args.count_pages]:
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url).status_code == 200
            results[mode]["queries"].append(len(captured.captured_queries))
    selectors.get_feature = real_get_feature
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=40)
    parser.add_argument("--per-source", type=int, default=25_000)
    parser.add_argument("--bench-features", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=500, help="timed GETs per mode")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--count-pages", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.pages = min(args.pages, args.bench_features - args.warmup)
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    scratch_database(DB_NAME, keep=args.keep)
    t0 = time.perf_counter()
    load_times = load(args, rng)
    load_total = time.perf_counter() - t0
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM features_feature")
        n_features = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM features_activation")
        n_acts = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM features_explanation")
        n_expl = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('features_feature')),"
                       " pg_size_pretty(pg_database_size(current_database()))")
        feat_size, db_size = cursor.fetchone()
    results = measure(args)

    print(f"\nload average during run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"Feature page bench: {n_features:,} features ({feat_size} with indexes), {n_acts:,} activations, "
          f"{n_expl:,} explanations; database {db_size}")
    print(f"benchmarked features: {len(args.urls):,} with {EXAMPLES} examples x {CONTEXT} tokens, 3 explanations x 2 scores; "
          f"{args.warmup} warm-up GETs, then {args.pages} random features, modes interleaved")
    print("load: " + ", ".join(f"{k} {v:.1f} s" for k, v in load_times.items()) + f" (total {load_total:.0f} s)")
    print(f"\n{'mode':<38}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}{'SQL p50 ms':>11}{'queries/page':>14}{'HTML KB':>9}")
    for mode, r in results.items():
        p50, p95, p99 = np.percentile(r["ms"], [50, 95, 99])
        q = sorted(set(r["queries"]))
        queries = str(q[0]) if len(q) == 1 else f"{q[0]}-{q[-1]}"
        print(f"{mode:<38}{p50:8.1f}{p95:8.1f}{p99:8.1f}{max(r['ms']):8.1f}{statistics.median(r['sql_ms']):11.2f}"
              f"{queries:>14}{r['bytes'] / 1024:9.0f}")
    opt = next(iter(results.values()))
    p95 = float(np.percentile(opt["ms"], 95))
    print(f"\ntarget: p95 <= 100 ms on >= 1M features -> {'MET' if p95 <= 100 and n_features >= 1_000_000 else 'NOT MET'}"
          f" (p95 {p95:.1f} ms, {n_features:,} features)")


if __name__ == "__main__":
    main()
