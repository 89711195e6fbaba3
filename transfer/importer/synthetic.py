"""A generator of realistic Neuronpedia exports (shapes of gpt2-small `res-jb`) at any size, written the way
Neuronpedia's own exporter writes them.

Rows are first made as Neuronpedia's *database* rows (its tables and column order, from its Prisma
migrations), then written exactly as `utils/neuronpedia-utils/neuronpedia_utils/export-data.py` does:
- every row through `json.dumps` with its defaults (", "/": " separators, non-ASCII as \\uXXXX, NaN as NaN),
  datetimes as naive `isoformat()`, every `creatorId`/`authorId` replaced by DEFAULT_CREATOR_ID;
- `config/*.jsonl` and the source folder's own `*.jsonl` (model, release, source, sourceset, inference
  hosts with `hostUrl` overridden to "") stay plain; `features/`, `activations/`, `explanations/` batches are
  gzipped at level 5;
- features and explanations: `ORDER BY index LIMIT 1024 OFFSET 1024n` where `index` is a TEXT column, so
  batch 0 holds 0, 1, 10, 100, 1000, ... (ties between explanations of one feature in id order);
- activations: batch n holds the activations of features [1024n, 1024(n+1)) in table order, and only rows
  whose creator is one of PUBLIC_ACTIVATION_USER_IDS (the others are dropped);
- explanation embeddings are pgvector's text form "[0.07789519,-0.046130,...]" (psycopg2 has no adapter).
Used by the tests (a few features) and the benchmark (24,576 features, ~25 examples of 128 tokens each,
one explanation with a 256-d embedding per feature). Deterministic for a given seed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transfer.importer.layout import BATCH_SIZE

PUBLIC_ACTIVATION_USER_IDS = (
    "clsxqq2xd0000vvp2k5itlhqj",
    "clkht01d40000jv08hvalcvly",
    "cljqfoqm1000776wmbr1f5mux",
    "cljj57d3c000076ei38vwnv35",
)
DEFAULT_CREATOR_ID = "clkht01d40000jv08hvalcvly"
PRIVATE_CREATOR_ID = "cm0privateuser000000000000"
CREATED = dt.datetime(2024, 7, 30, 18, 4, 11, 387000)  # noqa: DTZ001 - timestamp(3) without time zone

Row = dict[str, Any]


@dataclass(frozen=True)
class SyntheticSpec:
    model_id: str = "gpt2-small"
    set_name: str = "res-jb"
    layer: int = 6
    num_features: int = 24_576
    acts_per_feature: int = 25
    context: int = 128
    explanations_per_feature: int = 1
    embedding_dims: int = 256
    seed: int = 0
    batch_size: int = BATCH_SIZE  # the exporter's FEATURES_EXPLANATIONS_BATCH_SIZE / ACTIVATIONS_BATCH_SIZE
    private_activations: int = 1  # per feature, by a non-public creator: the exporter drops them

    @property
    def source_id(self) -> str:
        return f"{self.layer}-{self.set_name}"

    @property
    def counts(self) -> dict[str, int]:
        """Rows in the export (not in the database: private activations are not exported)."""
        return {
            "features": self.num_features,
            "activations": self.num_features * self.acts_per_feature,
            "explanations": self.num_features * self.explanations_per_feature,
        }


def _vocab(rng: np.random.Generator, size: int = 2000) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = [" " + "".join(rng.choice(letters, size=int(rng.integers(2, 9)))) for _ in range(size)]
    return [*words, "<|endoftext|>", ".", ",", "\n", '"', "\\", "é", "日本", "🙂"]


def _floats(values: Any, digits: int = 6) -> list[float]:
    return [float(v) for v in np.round(np.asarray(values, dtype=np.float64), digits)]


def pgvector_text(vec: np.ndarray) -> str:
    """pgvector's output of a vector(256): float4 values, shortest round-trip decimal, no spaces."""
    return "[" + ",".join(_float4_text(v) for v in vec) + "]"


def _float4_text(value: float) -> str:
    text = str(np.float32(value))
    return text[:-2] if text.endswith(".0") else text


# ---------------------------------------------------------------------------------------------- database rows


def config_rows() -> dict[str, list[Row]]:
    return {
        "ExplanationType": [
            {
                "name": "oai_token-act-pair",
                "displayName": "OpenAI token/activation pairs",
                "description": "explains from top activations",
                "featured": True,
                "isAttention": False,
                "explainerModelSettingsId": None,
                "settings": None,
                "url": None,
                "creatorName": "OpenAI",
                "creatorId": "cljj57d3c000076ei38vwnv35",
                "createdAt": CREATED,
                "updatedAt": CREATED,
            }
        ],
        "ExplanationModelType": [
            {
                "name": "gpt-4o-mini",
                "displayName": "GPT-4o mini",
                "description": "OpenAI's small model",
                "featured": True,
                "openRouterModelId": "openai/gpt-4o-mini",
                "url": None,
                "creatorName": "OpenAI",
                "createdAt": CREATED,
                "updatedAt": CREATED,
            }
        ],
        "ExplanationScoreModel": [
            {
                "name": "gpt-4o-mini",
                "displayName": "GPT-4o mini",
                "description": "",
                "featured": True,
                "openRouterModelId": None,
                "url": None,
                "creatorName": "OpenAI",
                "createdAt": CREATED,
                "updatedAt": CREATED,
            }
        ],
        "ExplanationScoreType": [
            {
                "name": "eleuther_fuzz",
                "displayName": "Fuzz",
                "description": "fuzzing",
                "featured": True,
                "isAttention": False,
                "scoreDescription": "share of correctly judged examples",
                "scorerModel": "gpt-4o-mini",
                "settings": '{"n_examples": 10}',
                "url": None,
                "creatorName": "EleutherAI",
                "creatorId": "cljj57d3c000076ei38vwnv35",
                "createdAt": CREATED,
                "updatedAt": CREATED,
            }
        ],
        "EvalType": [
            {
                "name": "core",
                "displayName": "Core",
                "description": "L0, CE loss, explained variance",
                "longerDescription": "",
                "outputSchema": {"type": "object", "properties": {"l0": {"type": "number"}}},
                "featured": True,
                "url": None,
                "createdAt": CREATED,
                "updatedAt": CREATED,
            }
        ],
    }


def metadata_rows(spec: SyntheticSpec) -> dict[str, list[Row]]:
    source_key = {"modelId": spec.model_id}
    return {
        "Model": [
            {
                "id": spec.model_id,
                "displayNameShort": "GPT2-SM",
                "displayName": "GPT2-Small",
                "creatorId": "cljj57d3c000076ei38vwnv35",
                "tlensId": "gpt2-small",
                "dimension": 768,
                "visibility": "PUBLIC",
                "inferenceEnabled": True,
                "instruct": False,
                "layers": 12,
                "neuronsPerLayer": 3072,
                "createdAt": CREATED,
                "owner": "OpenAI",
                "updatedAt": CREATED,
                "website": None,
                "defaultSourceId": None,
                "defaultSourceSetName": spec.set_name,
                "thinking": False,
                "defaultGraphSourceSetName": None,
                "openRouterId": None,
            }
        ],
        "SourceRelease": [
            {
                "name": "res-jb",
                "visibility": "PUBLIC",
                "isNewUi": False,
                "featured": True,
                "description": "Residual stream SAEs by Joseph Bloom",
                "descriptionShort": "RES-JB",
                "urls": ["https://example.org/res-jb"],
                "creatorEmail": None,
                "creatorName": "Joseph Bloom",
                "creatorNameShort": "jbloom",
                "creatorId": "cljj57d3c000076ei38vwnv35",
                "defaultSourceId": None,
                "defaultUmapSourceIds": [],
                "createdAt": CREATED,
                "defaultSourceSetName": None,
            }
        ],
        "SourceSet": [
            {
                **source_key,
                "name": spec.set_name,
                "hasDashboards": True,
                "visibility": "PUBLIC",
                "description": "Residual stream SAEs",
                "type": "sae",
                "creatorName": "Joseph Bloom",
                "urls": None,
                "creatorEmail": None,
                "creatorId": "cljj57d3c000076ei38vwnv35",
                "releaseName": "res-jb",
                "defaultRange": 1,
                "defaultShowBreaks": True,
                "showDfa": False,
                "showCorrelated": False,
                "showHeadAttribution": False,
                "showUmap": False,
                "createdAt": CREATED,
                "defaultOfModelId": None,
                "allowInferenceSearch": True,
                "graphEnabled": False,
                "defaultGraphModelId": None,
                "hasGraphs": False,
                "similarityMatrixEnabled": False,
            }
        ],
        "Source": [
            {
                "id": spec.source_id,
                **source_key,
                "hasDashboards": True,
                "inferenceEnabled": True,
                "saelensConfig": {
                    "d_sae": spec.num_features,
                    "hook_name": f"blocks.{spec.layer}.hook_resid_pre",
                },
                "saelensRelease": "gpt2-small-res-jb",
                "saelensSaeId": f"blocks.{spec.layer}.hook_resid_pre",
                "hfRepoId": None,
                "hfFolderId": None,
                "visibility": "PUBLIC",
                "setName": spec.set_name,
                "creatorId": "cljj57d3c000076ei38vwnv35",
                "hasUmap": False,
                "hasUmapLogSparsity": False,
                "hasUmapClusters": False,
                "num_prompts": 24576,
                "num_tokens_in_prompt": 128,
                "dataset": "Skylion007/openwebtext",
                "notes": None,
                "createdAt": CREATED,
                "defaultOfModelId": None,
                "cosSimMatchModelId": None,
                "cosSimMatchSourceId": None,
            }
        ],
        "InferenceHostSource": [
            {
                "id": "cm1host00000000000000000a",
                "name": "gpt2-small-host",
                "hostUrl": "http://10.0.0.7:5002",
                "modelId": spec.model_id,
                "createdAt": CREATED,
                "updatedAt": CREATED,
                "engine": "TRANSFORMER_LENS",
                "runpodServerlessUrl": None,
            }
        ],
        "InferenceHostSourceOnSource": [
            {
                "sourceId": spec.source_id,
                "sourceModelId": spec.model_id,
                "inferenceHostId": "cm1host00000000000000000a",
            }
        ],
    }


def _neuron(spec: SyntheticSpec, rng: np.random.Generator, vocab: list[str], index: int) -> Row:
    has_vector = index % 97 == 5
    null_arrays = index % 13 == 7  # rows loaded with explicit nulls (their import inserts what the JSON has)
    return {
        "modelId": spec.model_id,
        "layer": spec.source_id,
        "index": str(index),
        "sourceSetName": spec.set_name if index % 11 else None,
        "creatorId": PRIVATE_CREATOR_ID,
        "createdAt": CREATED,
        "maxActApprox": None if index % 17 == 3 else float(round(rng.uniform(0.5, 40), 5)),
        "hasVector": has_vector,
        "vector": _floats(rng.normal(size=8)) if has_vector else ([] if index % 2 else None),
        "vectorLabel": f"vector {index}" if has_vector else None,
        "vectorDefaultSteerStrength": 10.0 if index % 5 else None,
        "hookName": f"blocks.{spec.layer}.hook_resid_pre" if has_vector else None,
        "topkCosSimIndices": rng.integers(0, spec.num_features, 5).tolist(),
        "topkCosSimValues": _floats(np.sort(rng.uniform(0, 1, 5))[::-1], 4),
        "neuron_alignment_indices": None if null_arrays else rng.integers(0, 768, 3).tolist(),
        "neuron_alignment_values": None if null_arrays else _floats(rng.normal(size=3)),
        "neuron_alignment_l1": None if null_arrays else _floats(rng.uniform(0, 1, 3)),
        "correlated_neurons_indices": [],
        "correlated_neurons_pearson": [],
        "correlated_neurons_l1": [],
        "correlated_features_indices": [int(i) for i in rng.integers(0, spec.num_features, 2)],
        "correlated_features_pearson": _floats(rng.uniform(-1, 1, 2)),
        "correlated_features_l1": None,
        "neg_str": [vocab[i] for i in rng.integers(0, len(vocab), 10)],
        "neg_values": _floats(-np.sort(rng.uniform(0, 1, 10))[::-1], 5),
        "pos_str": [vocab[i] for i in rng.integers(0, len(vocab), 10)],
        "pos_values": _floats(np.sort(rng.uniform(0, 1, 10))[::-1], 5),
        "frac_nonzero": 0.0 if index % 50 == 49 else float(round(rng.uniform(0, 0.01), 7)),
        "freq_hist_data_bar_heights": [float(h) for h in rng.integers(0, 500, size=20)],
        "freq_hist_data_bar_values": _floats(np.linspace(0.1, 10, 20), 3),
        "logits_hist_data_bar_heights": [float(h) for h in rng.integers(0, 5000, size=20)],
        "logits_hist_data_bar_values": _floats(np.linspace(-1, 1, 20), 3),
        "decoder_weights_dist": None if null_arrays else [],
        "umap_cluster": None if index % 3 else int(rng.integers(0, 40)),
        "umap_log_feature_sparsity": None if index % 3 else float(round(rng.uniform(-6, 0), 4)),
        "umap_x": None if index % 3 else float(round(rng.uniform(-10, 10), 4)),
        "umap_y": None if index % 3 else float(round(rng.uniform(-10, 10), 4)),
    }


def _activations(spec: SyntheticSpec, rng: np.random.Generator, vocab: list[str], index: int) -> list[Row]:
    rows = []
    total = spec.acts_per_feature + spec.private_activations
    tokens_all = rng.integers(0, len(vocab), size=(total, spec.context))
    top = float(rng.uniform(1, 40))
    for k in range(total):
        values = np.zeros(spec.context)
        hot = rng.integers(0, spec.context, size=6)
        values[hot] = np.round(rng.uniform(0, top, size=6), 4)
        max_index = int(values.argmax())
        in_top = k < spec.acts_per_feature // 2
        dfa = k == 0 and index % 7 == 0
        rows.append(
            {
                "id": f"cl{spec.layer:02d}a{index:07d}x{k:03d}",
                "tokens": [vocab[t] for t in tokens_all[k]],
                "dataIndex": str(int(rng.integers(0, 10**7))) if k % 2 else None,
                "index": str(index),
                "layer": spec.source_id,
                "modelId": spec.model_id,
                "dataSource": None if k == 1 else "Skylion007/openwebtext",
                "maxValue": float(values[max_index]),
                "maxValueTokenIndex": max_index,
                "minValue": 0.0,
                "values": [float(v) for v in values],
                "dfaValues": _floats(rng.uniform(0, 1, spec.context), 4) if dfa else ([] if k % 3 else None),
                "dfaTargetIndex": max_index if dfa else None,
                "dfaMaxValue": 0.987 if dfa else None,
                "creatorId": PRIVATE_CREATOR_ID
                if k >= spec.acts_per_feature
                else PUBLIC_ACTIVATION_USER_IDS[k % 4],
                "createdAt": CREATED,
                "lossValues": [],
                "logitContributions": None,
                "binMin": -1.0 if in_top else round(top * 0.2, 3),
                "binMax": top if in_top else round(top * 0.4, 3),
                "binContains": -1.0 if in_top else 0.01,
                "qualifyingTokenIndex": None if k == 2 else max_index,
                "zKIndices": [],
                "zQIndices": [],
                "zValues": [],
            }
        )
    return rows


def _explanations(spec: SyntheticSpec, rng: np.random.Generator, vocab: list[str], index: int) -> list[Row]:
    rows = []
    for k in range(spec.explanations_per_feature):
        vec = rng.normal(size=spec.embedding_dims)
        vec = vec / np.linalg.norm(vec)
        rows.append(
            {
                "id": f"cl{spec.layer:02d}e{index:07d}x{k:02d}",
                "modelId": spec.model_id,
                "layer": spec.source_id,
                "index": str(index),
                "embedding": None if index % 29 == 28 else pgvector_text(vec),
                "description": f"mentions of{vocab[int(rng.integers(0, len(vocab)))]} ({index}.{k})",
                "authorId": "cljj57d3c000076ei38vwnv35",
                "triggeredByUserId": None,
                "notes": None,
                "scoreV1": 0.0,
                "scoreV2": None,
                "umap_x": None if index % 4 else 1.5,
                "umap_y": None if index % 4 else -2.25,
                "umap_cluster": None if index % 4 else 3,
                "umap_log_feature_sparsity": None if index % 4 else -3.5,
                "typeName": "oai_token-act-pair" if index % 10 else None,
                "explanationModelName": "gpt-4o-mini" if index % 10 else None,
                "createdAt": CREATED,
                "updatedAt": CREATED,
            }
        )
    return rows


def database_rows(spec: SyntheticSpec) -> dict[str, list[Row]]:
    """Neuronpedia's tables for one source, as its database would hold them."""
    rng = np.random.default_rng(spec.seed)
    vocab = _vocab(rng)
    tables: dict[str, list[Row]] = {
        **config_rows(),
        **metadata_rows(spec),
        "Neuron": [],
        "Activation": [],
        "Explanation": [],
    }
    for index in range(spec.num_features):
        tables["Neuron"].append(_neuron(spec, rng, vocab, index))
        tables["Activation"].extend(_activations(spec, rng, vocab, index))
        tables["Explanation"].extend(_explanations(spec, rng, vocab, index))
    return tables


# ---------------------------------------------------------------------------------- export-data.py, emulated

FEATURE_KEYS = (
    "modelId",
    "layer",
    "index",
    "maxActApprox",
    "creatorId",
    "frac_nonzero",
    "freq_hist_data_bar_heights",
    "freq_hist_data_bar_values",
    "logits_hist_data_bar_heights",
    "logits_hist_data_bar_values",
    "neuron_alignment_indices",
    "neuron_alignment_l1",
    "neuron_alignment_values",
    "correlated_neurons_indices",
    "correlated_neurons_l1",
    "correlated_neurons_pearson",
    "decoder_weights_dist",
    "neg_str",
    "neg_values",
    "pos_str",
    "pos_values",
    "sourceSetName",
    "topkCosSimIndices",
    "topkCosSimValues",
    "vector",
    "vectorLabel",
    "hookName",
    "vectorDefaultSteerStrength",
    "hasVector",
)
EXPLANATION_KEYS = (
    "id",
    "modelId",
    "layer",
    "index",
    "authorId",
    "description",
    "embedding",
    "typeName",
    "explanationModelName",
    "umap_x",
    "umap_y",
    "umap_cluster",
    "umap_log_feature_sparsity",
)
ACTIVATION_KEYS = (
    "id",
    "modelId",
    "layer",
    "index",
    "creatorId",
    "dataSource",
    "tokens",
    "maxValue",
    "minValue",
    "values",
    "maxValueTokenIndex",
    "dfaValues",
    "dfaMaxValue",
    "dfaTargetIndex",
    "binContains",
    "binMin",
    "binMax",
)
CONFIG_FILES = {
    "ExplanationType": "explanation_type.jsonl",
    "ExplanationModelType": "explanation_model_type.jsonl",
    "ExplanationScoreModel": "explanation_score_model.jsonl",
    "ExplanationScoreType": "explanation_score_type.jsonl",
    "EvalType": "eval_type.jsonl",
}


def _formatted(row: Row, creator_id: str | None) -> Row:
    out = dict(row)
    for key, value in out.items():
        if isinstance(value, dt.datetime):
            out[key] = value.isoformat()
        if key == "creatorId":
            out[key] = creator_id
    return out


def _write_rows(path: Path, rows: list[Row], creator_id: str | None) -> None:
    """writeRowsToJsonlFile: json.dumps per row, one per line, datetimes isoformat, creatorId replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(_formatted(row, creator_id)) + "\n" for row in rows))


def _write_batch(path: Path, rows: list[Row], keys: tuple[str, ...], creator_id: str | None) -> None:
    """write_batch_to_jsonl (SELECT keys, json.dumps, "\\n".join + final newline), then
    replace_author_and_creator_with_default_creator_id (each line loaded and dumped again), then
    compress_files (gzip level 5, the .jsonl removed)."""
    text = "\n".join(json.dumps({k: row[k] for k in keys}) for row in rows) + ("\n" if rows else "")
    lines = []
    for line in text.splitlines(keepends=True):
        data = json.loads(line)
        if "creatorId" in data:
            data["creatorId"] = creator_id
        if "authorId" in data:
            data["authorId"] = creator_id
        lines.append(json.dumps(data) + "\n")
    _gzip(path, "".join(lines).encode())


def _gzip(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_name(path.name + ".gz").write_bytes(gzip.compress(data, compresslevel=5, mtime=0))


def write_np_export(
    root: Path,
    tables: dict[str, list[Row]],
    *,
    creator_id: str | None = DEFAULT_CREATOR_ID,
    batch_size: int = BATCH_SIZE,
    with_config: bool = True,
) -> list[Path]:
    """Write `tables` under `root` as export-data.py does; returns the source folders."""
    if with_config:
        for table, filename in CONFIG_FILES.items():
            _write_rows(root / "config" / filename, tables.get(table, []), creator_id)
    folders = []
    for source in tables["Source"]:
        model_id, source_id = source["modelId"], source["id"]
        folder = root / model_id / source_id
        folders.append(folder)
        _write_rows(folder / "model.jsonl", [r for r in tables["Model"] if r["id"] == model_id], creator_id)
        _write_rows(folder / "release.jsonl", tables["SourceRelease"][:1], creator_id)
        _write_rows(folder / "source.jsonl", [source], creator_id)
        sets = [r for r in tables["SourceSet"] if r["modelId"] == model_id and r["name"] == source["setName"]]
        _write_rows(folder / "sourceset.jsonl", sets, creator_id)
        links = [
            r
            for r in tables["InferenceHostSourceOnSource"]
            if r["sourceModelId"] == model_id and r["sourceId"] == source_id
        ]
        _write_rows(folder / "inference_hosts_on_source.jsonl", links, creator_id)
        hosts = [
            {**r, "hostUrl": ""}
            for r in tables["InferenceHostSource"]
            if r["id"] in {link["inferenceHostId"] for link in links}
        ]
        _write_rows(folder / "inference_hosts.jsonl", hosts, creator_id)
        _write_source_batches(folder, tables, model_id, source_id, creator_id, batch_size)
    return folders


def _write_source_batches(
    folder: Path,
    tables: dict[str, list[Row]],
    model_id: str,
    source_id: str,
    creator_id: str | None,
    batch_size: int,
) -> None:
    mine = [r for r in tables["Neuron"] if r["modelId"] == model_id and r["layer"] == source_id]
    by_text = sorted(mine, key=lambda r: r["index"])  # ORDER BY index: a TEXT column
    total = len(mine)
    for batch, offset in enumerate(range(0, total, batch_size)):
        _write_batch(
            folder / "features" / f"batch-{batch}.jsonl",
            by_text[offset : offset + batch_size],
            FEATURE_KEYS,
            creator_id,
        )
    explanations = sorted(
        (r for r in tables["Explanation"] if r["modelId"] == model_id and r["layer"] == source_id),
        key=lambda r: (r["index"], r["id"]),
    )
    for batch, offset in enumerate(range(0, len(explanations), batch_size)):
        _write_batch(
            folder / "explanations" / f"batch-{batch}.jsonl",
            explanations[offset : offset + batch_size],
            EXPLANATION_KEYS,
            creator_id,
        )
    activations = [r for r in tables["Activation"] if r["modelId"] == model_id and r["layer"] == source_id]
    for batch, offset in enumerate(range(0, total, batch_size)):
        wanted = {str(i) for i in range(offset, min(offset + batch_size - 1, total - 1) + 1)}
        rows = [r for r in activations if r["index"] in wanted]
        # no ORDER BY: PostgreSQL returns them in plan order (a hash/bitmap plan scatters features); a fixed
        # scramble stands in for it
        rows.sort(key=lambda r: zlib.crc32(r["index"].encode()))
        text = "\n".join(json.dumps({k: r[k] for k in ACTIVATION_KEYS}) for r in rows) + (
            "\n" if rows else ""
        )
        kept = []  # filter_author_and_creator_in_activations
        for line in text.splitlines(keepends=True):
            data = json.loads(line)
            if data.get("creatorId") in PUBLIC_ACTIVATION_USER_IDS:
                data["creatorId"] = creator_id
                kept.append(json.dumps(data) + "\n")
        _gzip(folder / "activations" / f"batch-{batch}.jsonl", "".join(kept).encode())


def write_source(root: Path, spec: SyntheticSpec, *, with_config: bool = True) -> Path:
    """Write `{root}/{model}/{source}/...` (and `{root}/config/`); returns the source folder."""
    return write_np_export(root, database_rows(spec), batch_size=spec.batch_size, with_config=with_config)[0]
