"""Neuronpedia's export layout and the mapping of its keys (DB column names) to our columns.

```
{base}/config/explanation_type.jsonl ...            catalogs
{base}/{model}/{source}/model.jsonl, sourceset.jsonl, source.jsonl, release.jsonl
{base}/{model}/{source}/features/batch-{n}.jsonl.gz       1,024 features per file, by index
{base}/{model}/{source}/activations/batch-{n}.jsonl.gz    activations of features [1024n, 1024(n+1))
{base}/{model}/{source}/explanations/batch-{n}.jsonl.gz   1,024 explanations per file
```
Keys we add in our exports (ignored by Neuronpedia) are marked "ours" below; an import never needs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DEFAULT_BASE = "https://neuronpedia-datasets.s3.amazonaws.com/v1"
BATCH_SIZE = 1024
BATCH_KINDS = ("features", "activations", "explanations")
METADATA_FILES = ("release.jsonl", "model.jsonl", "sourceset.jsonl", "source.jsonl")
CONFIG_FILES = ("explanation_type.jsonl", "explanation_model_type.jsonl",
                "explanation_score_type.jsonl", "explanation_score_model.jsonl", "eval_type.jsonl")
BATCH_RE = re.compile(r"^batch-(\d+)\.jsonl(\.gz)?$")

ValueKind = Literal["int", "float", "bool", "str", "floats", "ints", "strs", "json", "vector"]


@dataclass(frozen=True)
class Column:
    key: str            # key in the export (Neuronpedia column name)
    column: str         # our column
    kind: ValueKind
    required: bool = False
    nullable: bool = True   # False: JSON null becomes the column's empty value ('' / [] / false)


def batch_number(name: str) -> int:
    match = BATCH_RE.match(name)
    return int(match.group(1)) if match else -1


FEATURE_COLUMNS: tuple[Column, ...] = (
    Column("maxActApprox", "max_act_approx", "float"),
    Column("frac_nonzero", "frac_nonzero", "float"),
    Column("freq_hist_data_bar_heights", "freq_hist_data_bar_heights", "floats", nullable=False),
    Column("freq_hist_data_bar_values", "freq_hist_data_bar_values", "floats", nullable=False),
    Column("logits_hist_data_bar_heights", "logits_hist_data_bar_heights", "floats", nullable=False),
    Column("logits_hist_data_bar_values", "logits_hist_data_bar_values", "floats", nullable=False),
    Column("pos_str", "pos_str", "strs", nullable=False),
    Column("pos_values", "pos_values", "floats", nullable=False),
    Column("neg_str", "neg_str", "strs", nullable=False),
    Column("neg_values", "neg_values", "floats", nullable=False),
    Column("topkCosSimIndices", "topk_cos_sim_indices", "ints", nullable=False),
    Column("topkCosSimValues", "topk_cos_sim_values", "floats", nullable=False),
    Column("neuron_alignment_indices", "neuron_alignment_indices", "ints", nullable=False),
    Column("neuron_alignment_values", "neuron_alignment_values", "floats", nullable=False),
    Column("neuron_alignment_l1", "neuron_alignment_l1", "floats", nullable=False),
    Column("correlated_neurons_indices", "correlated_neurons_indices", "ints", nullable=False),
    Column("correlated_neurons_pearson", "correlated_neurons_pearson", "floats", nullable=False),
    Column("correlated_neurons_l1", "correlated_neurons_l1", "floats", nullable=False),
    Column("decoder_weights_dist", "decoder_weights_dist", "floats", nullable=False),
    Column("umap_x", "umap_x", "float"),
    Column("umap_y", "umap_y", "float"),
    Column("umap_cluster", "umap_cluster", "int"),
    Column("umap_log_feature_sparsity", "umap_log_feature_sparsity", "float"),
    Column("hasVector", "has_vector", "bool", nullable=False),
    Column("vector", "vector", "floats"),
    Column("vectorLabel", "vector_label", "str", nullable=False),
    Column("vectorDefaultSteerStrength", "vector_default_steer_strength", "float"),
    Column("hookName", "hook_name", "str", nullable=False),
    Column("isDead", "is_dead", "bool", nullable=False),  # ours; derived from frac_nonzero == 0 if absent
)

ACTIVATION_COLUMNS: tuple[Column, ...] = (
    Column("id", "external_id", "str", nullable=False),
    Column("tokens", "tokens", "strs", required=True, nullable=False),
    Column("values", "values", "floats", required=True, nullable=False),
    Column("maxValue", "max_value", "float", required=True, nullable=False),
    Column("maxValueTokenIndex", "max_value_token_index", "int", required=True, nullable=False),
    Column("minValue", "min_value", "float"),
    Column("binMin", "bin_min", "float"),
    Column("binMax", "bin_max", "float"),
    Column("binContains", "bin_contains", "float"),
    Column("qualifyingTokenIndex", "qualifying_token_index", "int"),
    Column("dataSource", "data_source", "str", nullable=False),
    Column("dataIndex", "data_index", "int"),
    Column("dfaValues", "dfa_values", "floats", nullable=False),
    Column("dfaTargetIndex", "dfa_target_index", "int"),
    Column("dfaMaxValue", "dfa_max_value", "float"),
)

EXPLANATION_COLUMNS: tuple[Column, ...] = (
    Column("id", "external_id", "str", required=True, nullable=False),
    Column("description", "description", "str", required=True, nullable=False),
    Column("embedding", "embedding", "vector"),
    Column("typeName", "type_id", "str"),
    Column("explanationModelName", "explanation_model_id", "str"),
    Column("scoreV1", "score_v1", "float", nullable=False),
    Column("scoreV2", "score_v2", "float"),
    Column("umap_x", "umap_x", "float"),
    Column("umap_y", "umap_y", "float"),
    Column("umap_cluster", "umap_cluster", "int"),
    Column("umap_log_feature_sparsity", "umap_log_feature_sparsity", "float"),
    Column("notes", "notes", "str", nullable=False),
    Column("embedder", "embedder", "str", nullable=False),  # ours; inferred from the width if absent
)

BATCH_COLUMNS: dict[str, tuple[Column, ...]] = {
    "features": FEATURE_COLUMNS, "activations": ACTIVATION_COLUMNS, "explanations": EXPLANATION_COLUMNS,
}

# Metadata rows: (export key, our field). Unknown keys are ignored.
MODEL_FIELDS = {
    "id": "id", "displayName": "display_name", "displayNameShort": "display_name_short",
    "owner": "owner", "website": "website", "layers": "layers", "neuronsPerLayer": "neurons_per_layer",
    "dimension": "dimension", "tlensId": "tlens_id", "hfId": "hf_id", "openRouterId": "open_router_id",
    "instruct": "instruct", "thinking": "thinking", "inferenceEnabled": "inference_enabled",
    "visibility": "visibility", "defaultSourceSetName": "default_source_set_name",
    "defaultSourceId": "default_source_name",
}
RELEASE_FIELDS = {
    "name": "name", "description": "description", "descriptionShort": "description_short",
    "urls": "urls", "creatorName": "creator_name", "creatorNameShort": "creator_name_short",
    "featured": "featured", "defaultSourceSetName": "default_source_set_name",
    "defaultSourceId": "default_source_name", "defaultUmapSourceIds": "default_umap_source_names",
    "visibility": "visibility",
}
SOURCESET_FIELDS = {
    "name": "name", "description": "description", "type": "type", "creatorName": "creator_name",
    "urls": "urls", "visibility": "visibility", "hasDashboards": "has_dashboards",
    "allowInferenceSearch": "allow_inference_search", "showUmap": "show_umap", "showDfa": "show_dfa",
    "showCorrelated": "show_correlated", "defaultRange": "default_range",
    "defaultShowBreaks": "default_show_breaks",
}
SOURCE_FIELDS = {
    "id": "name", "hookName": "hook_name", "num_features": "num_features",
    "hasDashboards": "has_dashboards", "inferenceEnabled": "inference_enabled",
    "saelensRelease": "saelens_release", "saelensSaeId": "saelens_sae_id",
    "saelensConfig": "saelens_config", "hfRepoId": "hf_repo_id", "hfFolderId": "hf_folder_id",
    "dataset": "dataset", "num_prompts": "num_prompts", "num_tokens_in_prompt": "num_tokens_in_prompt",
    "notes": "notes", "hasUmap": "has_umap", "hasUmapClusters": "has_umap_clusters",
    "cosSimMatchModelId": "cos_sim_match_model_id", "cosSimMatchSourceId": "cos_sim_match_source_name",
    "visibility": "visibility",
}
CONFIG_FIELDS: dict[str, tuple[str, dict[str, str]]] = {
    "explanation_type.jsonl": ("ExplanationType", {
        "name": "name", "displayName": "display_name", "description": "description",
        "isAttention": "is_attention", "settings": "settings", "url": "url", "featured": "featured",
        "creatorName": "creator_name"}),
    "explanation_model_type.jsonl": ("ExplanationModel", {
        "name": "name", "displayName": "display_name", "openRouterModelId": "open_router_model_id",
        "featured": "featured", "creatorName": "creator_name", "url": "url"}),
    "explanation_score_type.jsonl": ("ExplanationScoreType", {
        "name": "name", "displayName": "display_name", "scoreDescription": "description",
        "scorerModel": "scorer_model", "isAttention": "is_attention", "settings": "settings"}),
    "explanation_score_model.jsonl": ("ExplanationScoreModel", {
        "name": "name", "displayName": "display_name", "openRouterModelId": "open_router_model_id"}),
}
