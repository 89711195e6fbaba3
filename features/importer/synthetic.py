"""A generator of realistic Neuronpedia exports (shapes of gpt2-small `res-jb`) at any size.

Used by the tests (a few features) and the benchmark (24,576 features, ~25 examples of 128 tokens each,
one explanation with a 256-d embedding per feature). Deterministic for a given seed.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features.importer.layout import BATCH_SIZE


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
    batch_size: int = BATCH_SIZE  # tests use tiny batches to get several files

    @property
    def source_id(self) -> str:
        return f"{self.layer}-{self.set_name}"

    @property
    def counts(self) -> dict[str, int]:
        return {"features": self.num_features,
                "activations": self.num_features * self.acts_per_feature,
                "explanations": self.num_features * self.explanations_per_feature}


def _vocab(rng: np.random.Generator, size: int = 2000) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = [" " + "".join(rng.choice(letters, size=int(rng.integers(2, 9)))) for _ in range(size)]
    return [*words, "<|endoftext|>", ".", ",", "\n", "\"", "\\", "é", "日本"]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows).encode()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data, compresslevel=5, mtime=0))
    else:
        path.write_bytes(data)


def write_config(root: Path) -> None:
    config = root / "config"
    _write_jsonl(config / "explanation_type.jsonl", [
        {"name": "oai_token-act-pair", "displayName": "OpenAI token/activation pairs",
         "description": "explains from top activations", "isAttention": False, "settings": {},
         "url": "", "featured": True, "creatorName": "OpenAI", "creatorId": "x", "createdAt": "2024"}])
    _write_jsonl(config / "explanation_model_type.jsonl", [
        {"name": "gpt-4o-mini", "displayName": "GPT-4o mini", "openRouterModelId": "openai/gpt-4o-mini",
         "featured": True, "creatorName": "OpenAI", "url": ""}])
    _write_jsonl(config / "explanation_score_type.jsonl", [
        {"name": "eleuther_fuzz", "displayName": "Fuzz", "scoreDescription": "fuzzing",
         "scorerModel": "gpt-4o-mini", "isAttention": False, "settings": {}}])
    _write_jsonl(config / "explanation_score_model.jsonl", [
        {"name": "gpt-4o-mini", "displayName": "GPT-4o mini", "openRouterModelId": "openai/gpt-4o-mini"}])
    _write_jsonl(config / "eval_type.jsonl", [{"name": "core", "displayName": "Core"}])


def write_metadata(root: Path, spec: SyntheticSpec) -> Path:
    folder = root / spec.model_id / spec.source_id
    _write_jsonl(folder / "release.jsonl", [{
        "name": "res-jb", "description": "Residual stream SAEs by Joseph Bloom",
        "descriptionShort": "RES-JB", "urls": ["https://example.org/res-jb"], "creatorName": "Joseph Bloom",
        "featured": True, "visibility": "PUBLIC", "createdAt": "2024-01-01T00:00:00"}])
    _write_jsonl(folder / "model.jsonl", [{
        "id": spec.model_id, "displayName": "GPT2-SM", "layers": 12, "dimension": 768,
        "neuronsPerLayer": 3072, "tlensId": "gpt2-small", "instruct": False, "inferenceEnabled": True,
        "visibility": "PUBLIC", "creatorId": "abc", "createdAt": "2024-01-01T00:00:00"}])
    _write_jsonl(folder / "sourceset.jsonl", [{
        "modelId": spec.model_id, "name": spec.set_name, "description": "Residual stream SAEs",
        "type": "sae", "creatorName": "Joseph Bloom", "urls": [], "visibility": "PUBLIC",
        "hasDashboards": True, "releaseName": "res-jb", "showDfa": False, "defaultRange": 1}])
    _write_jsonl(folder / "source.jsonl", [{
        "id": spec.source_id, "modelId": spec.model_id, "setName": spec.set_name, "hasDashboards": True,
        "inferenceEnabled": True, "saelensRelease": "gpt2-small-res-jb",
        "saelensSaeId": f"blocks.{spec.layer}.hook_resid_pre",
        "saelensConfig": {"d_sae": spec.num_features, "hook_name": f"blocks.{spec.layer}.hook_resid_pre"},
        "dataset": "Skylion007/openwebtext", "num_prompts": 24576, "num_tokens_in_prompt": 128,
        "visibility": "PUBLIC"}])
    return folder


def _feature_row(spec: SyntheticSpec, rng: np.random.Generator, vocab: list[str], index: int) -> dict:
    heights = rng.integers(0, 500, size=20).tolist()
    return {
        "modelId": spec.model_id, "layer": spec.source_id, "index": str(index),
        "maxActApprox": round(float(rng.uniform(0.5, 40)), 3), "creatorId": "clxyz",
        "frac_nonzero": round(float(rng.uniform(0, 0.01)), 6),
        "freq_hist_data_bar_heights": heights,
        "freq_hist_data_bar_values": np.round(np.linspace(0.1, 10, 20), 3).tolist(),
        "logits_hist_data_bar_heights": rng.integers(0, 5000, size=20).tolist(),
        "logits_hist_data_bar_values": np.round(np.linspace(-1, 1, 20), 3).tolist(),
        "neuron_alignment_indices": [], "neuron_alignment_l1": [], "neuron_alignment_values": [],
        "correlated_neurons_indices": [], "correlated_neurons_l1": [], "correlated_neurons_pearson": [],
        "decoder_weights_dist": [],
        "neg_str": [vocab[i] for i in rng.integers(0, len(vocab), 10)],
        "neg_values": np.round(-np.sort(rng.uniform(0, 1, 10))[::-1], 3).tolist(),
        "pos_str": [vocab[i] for i in rng.integers(0, len(vocab), 10)],
        "pos_values": np.round(np.sort(rng.uniform(0, 1, 10))[::-1], 3).tolist(),
        "sourceSetName": spec.set_name,
        "topkCosSimIndices": rng.integers(0, spec.num_features, 5).tolist(),
        "topkCosSimValues": np.round(np.sort(rng.uniform(0, 1, 5))[::-1], 3).tolist(),
        "vector": [], "vectorLabel": None, "hookName": None, "vectorDefaultSteerStrength": 10,
        "hasVector": False,
    }


def _activation_rows(spec: SyntheticSpec, rng: np.random.Generator, vocab: list[str],
                     index: int) -> list[dict]:
    rows = []
    tokens_all = rng.integers(0, len(vocab), size=(spec.acts_per_feature, spec.context))
    top = float(rng.uniform(1, 40))
    for k in range(spec.acts_per_feature):
        values = np.zeros(spec.context)
        hot = rng.integers(0, spec.context, size=6)
        values[hot] = np.round(rng.uniform(0, top, size=6), 3)
        max_index = int(values.argmax())
        in_top = k < spec.acts_per_feature // 2
        rows.append({
            "id": f"act{spec.layer}x{index}x{k}", "modelId": spec.model_id, "layer": spec.source_id,
            "index": str(index), "creatorId": "clxyz", "dataSource": "Skylion007/openwebtext",
            "dataIndex": str(int(rng.integers(0, 10**7))),
            "tokens": [vocab[t] for t in tokens_all[k]],
            "values": [v if v else 0 for v in values.tolist()],
            "maxValue": values[max_index], "minValue": 0, "maxValueTokenIndex": max_index,
            "binMin": -1 if in_top else round(top * 0.2, 3), "binMax": top if in_top else round(top * 0.4, 3),
            "binContains": -1 if in_top else 0.01, "dfaValues": [], "dfaMaxValue": None,
            "dfaTargetIndex": None, "qualifyingTokenIndex": max_index,
        })
    return rows


def _explanation_rows(spec: SyntheticSpec, rng: np.random.Generator, vocab: list[str],
                      index: int) -> list[dict]:
    rows = []
    for k in range(spec.explanations_per_feature):
        vec = rng.normal(size=spec.embedding_dims)
        vec = vec / np.linalg.norm(vec)
        rows.append({
            "id": f"exp{spec.layer}x{index}x{k}", "modelId": spec.model_id, "layer": spec.source_id,
            "index": str(index), "authorId": "clxyz",
            "description": f"mentions of{vocab[int(rng.integers(0, len(vocab)))]} ({index}.{k})",
            "embedding": np.round(vec, 6).tolist(), "typeName": "oai_token-act-pair",
            "explanationModelName": "gpt-4o-mini", "umap_x": None, "umap_y": None, "umap_cluster": None,
            "umap_log_feature_sparsity": None,
        })
    return rows


def write_source(root: Path, spec: SyntheticSpec, *, with_config: bool = True) -> Path:
    """Write `{root}/{model}/{source}/...` (and `{root}/config/`); returns the source folder."""
    rng = np.random.default_rng(spec.seed)
    vocab = _vocab(rng)
    if with_config:
        write_config(root)
    folder = write_metadata(root, spec)
    explanations: list[dict] = []
    for batch, start in enumerate(range(0, spec.num_features, spec.batch_size)):
        indices = range(start, min(start + spec.batch_size, spec.num_features))
        _write_jsonl(folder / "features" / f"batch-{batch}.jsonl.gz",
                     [_feature_row(spec, rng, vocab, i) for i in indices])
        _write_jsonl(folder / "activations" / f"batch-{batch}.jsonl.gz",
                     [row for i in indices for row in _activation_rows(spec, rng, vocab, i)])
        explanations.extend(row for i in indices for row in _explanation_rows(spec, rng, vocab, i))
    for batch, start in enumerate(range(0, len(explanations), spec.batch_size)):
        _write_jsonl(folder / "explanations" / f"batch-{batch}.jsonl.gz",
                     explanations[start:start + spec.batch_size])
    return folder
