"""Autointerp bench: local embedder throughput, and explanation search latency HNSW vs exact (same run).

Uses a scratch table shaped like features_explanation's vector part (untyped `vector` column, a partial
HNSW index on `embedding::vector(384)` per embedder) in its own database, so it never touches app data.

    .venv/bin/python bench/autointerp_bench.py [--rows 50000] [--queries 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DIMS, K = 384, 20


def clustered(rng: np.random.Generator, n: int, centers: np.ndarray) -> np.ndarray:
    vecs = centers[rng.integers(0, len(centers), n)] + 0.35 * rng.normal(size=(n, DIMS)) / np.sqrt(DIMS)
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


def bench_embedder() -> tuple[float, float]:
    from autointerp.embedders import MiniLMEmbedder, load_minilm

    started = time.perf_counter()
    load_minilm()
    load_s = time.perf_counter() - started
    texts = [f"mentions of {w} in sentence number {i}" for i, w in enumerate(["cats", "rates", "code"] * 400)]
    started = time.perf_counter()
    MiniLMEmbedder().embed(texts)
    return load_s, len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    base = os.environ.get("NP_BENCH_PG", "")
    if not base:  # the configured server (embedded: the app's role and password), without its database
        from neuronpedia import devservices  # noqa: PLC0415

        base = devservices.database_url().rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname='np_bench'").fetchone():
            admin.execute("CREATE DATABASE np_bench")
    conn = psycopg.connect(f"{base}/np_bench", autocommit=True, prepare_threshold=None)
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    register_vector(conn)
    conn.execute("DROP TABLE IF EXISTS bench_expl")
    conn.execute(
        "CREATE TABLE bench_expl (id bigserial PRIMARY KEY, embedder text, visible bool, embedding vector)"
    )
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(200, DIMS))
    data = clustered(rng, args.rows, centers)
    started = time.perf_counter()
    with conn.cursor().copy(
        "COPY bench_expl (embedder, visible, embedding) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["text", "bool", "vector"])
        for i, vec in enumerate(data):
            copy.write_row(("all-MiniLM-L6-v2", i % 10 != 0, vec))
    load_s = time.perf_counter() - started
    conn.execute("SET maintenance_work_mem = '512MB'")
    started = time.perf_counter()
    conn.execute(
        "CREATE INDEX bench_hnsw ON bench_expl USING hnsw ((embedding::vector(384)) vector_cosine_ops) "
        "WHERE embedder = 'all-MiniLM-L6-v2'"
    )
    build_s = time.perf_counter() - started
    conn.execute("ANALYZE bench_expl")
    sql = (
        "SELECT id FROM bench_expl WHERE embedder = 'all-MiniLM-L6-v2' AND visible "
        "ORDER BY embedding::vector(384) <=> %s::vector(384) LIMIT %s"
    )
    queries = clustered(rng, args.queries, centers)
    timings: dict[str, list[float]] = {"hnsw": [], "exact": []}
    recalls = []
    for q in queries:
        results = {}
        for mode in ("hnsw", "exact"):
            with conn.transaction():
                if mode == "exact":
                    conn.execute("SET LOCAL enable_indexscan = off")
                else:
                    conn.execute("SET LOCAL hnsw.ef_search = 100")
                    conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
                started = time.perf_counter()
                results[mode] = [r[0] for r in conn.execute(sql, (q, K)).fetchall()]
                timings[mode].append((time.perf_counter() - started) * 1000)
        recalls.append(len(set(results["hnsw"]) & set(results["exact"])) / K)
    emb_load, emb_rate = bench_embedder()
    print(
        f"rows {args.rows} x {DIMS}-d (200 clusters, 10% hidden by a filter), {args.queries} queries, k={K}"
    )
    print(f"{'copy load':<28}{load_s:8.1f} s\n{'HNSW build':<28}{build_s:8.1f} s")
    for mode, values in timings.items():
        p50, p95 = np.percentile(values, [50, 95])
        print(f"{'search ' + mode + ' p50/p95 ms':<28}{p50:8.2f} {p95:8.2f}")
    print(f"{'recall@20 (hnsw vs exact)':<28}{np.mean(recalls):8.3f}")
    print(f"{'MiniLM load':<28}{emb_load:8.1f} s\n{'MiniLM throughput':<28}{emb_rate:8.0f} texts/s")
    conn.execute("DROP TABLE bench_expl")


if __name__ == "__main__":
    main()
