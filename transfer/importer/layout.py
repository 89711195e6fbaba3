"""Neuronpedia's export layout and the mapping of its keys (DB column names) to our columns.

What `utils/neuronpedia-utils/neuronpedia_utils/export-data.py` writes (and our exporter writes back):
```
{base}/config/explanation_type.jsonl, explanation_model_type.jsonl, explanation_score_type.jsonl,
             explanation_score_model.jsonl, eval_type.jsonl           catalogs (SELECT *), plain JSONL
{base}/{model}/{source}/model.jsonl, release.jsonl, sourceset.jsonl, source.jsonl        one row each
{base}/{model}/{source}/inference_hosts.jsonl, inference_hosts_on_source.jsonl   upstream servers
{base}/{model}/{source}/features/batch-{n}.jsonl.gz      1,024 features per file, ORDER BY the *text*
                                                         column `index` (batch 0: 0, 1, 10, 100, 1000...)
{base}/{model}/{source}/activations/batch-{n}.jsonl.gz   activations of features [1024n, 1024(n+1))
{base}/{model}/{source}/explanations/batch-{n}.jsonl.gz  1,024 explanations per file, by text index
```
Rows are Neuronpedia's rows with its column names as keys; NULL is written as null; explanation
embeddings come out of psycopg2 (no pgvector adapter) as strings "[0.07,-0.04,...]". Its SAEDashboard
converter writes the same layout with `index` as a number and `"dimension": null`, `layers: 0`.
Columns marked `ours` are not Neuronpedia's: an import never needs them and a Neuronpedia export leaves
them out.
A key a file leaves out gets what Neuronpedia's import would store, its column default (`absent`: `[]` for
most arrays, 10 for vectorDefaultSteerStrength...): its exporter leaves out lossValues/zKIndices..., its
converter writes `"zIndices": null`. A key present with null stays NULL. Exception: correlated_features_*,
which its exporter never writes, stay NULL ("not in the export"; `[]` there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_BASE = "https://neuronpedia-datasets.s3.amazonaws.com/v1"
BATCH_SIZE = 1024
BATCH_KINDS = ("features", "activations", "explanations")
METADATA_FILES = ("release.jsonl", "model.jsonl", "sourceset.jsonl", "source.jsonl")
HOST_FILES = ("inference_hosts.jsonl", "inference_hosts_on_source.jsonl")
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
    ours: bool = False      # not a Neuronpedia column
    absent: Any = None      # Neuronpedia's column default: what its import stores when the key is absent


def batch_number(name: str) -> int:
    match = BATCH_RE.match(name)
    return int(match.group(1)) if match else -1


FEATURE_COLUMNS: tuple[Column, ...] = (
    Column("maxActApprox", "max_act_approx", "float", absent=0.0),
    Column("frac_nonzero", "frac_nonzero", "float", nullable=False),
    Column("freq_hist_data_bar_heights", "freq_hist_data_bar_heights", "floats", absent=[]),
    Column("freq_hist_data_bar_values", "freq_hist_data_bar_values", "floats", absent=[]),
    Column("logits_hist_data_bar_heights", "logits_hist_data_bar_heights", "floats", absent=[]),
    Column("logits_hist_data_bar_values", "logits_hist_data_bar_values", "floats", absent=[]),
    Column("pos_str", "pos_str", "strs", absent=[]),
    Column("pos_values", "pos_values", "floats", absent=[]),
    Column("neg_str", "neg_str", "strs", absent=[]),
    Column("neg_values", "neg_values", "floats", absent=[]),
    Column("topkCosSimIndices", "topk_cos_sim_indices", "ints", absent=[]),
    Column("topkCosSimValues", "topk_cos_sim_values", "floats", absent=[]),
    Column("neuron_alignment_indices", "neuron_alignment_indices", "ints", absent=[]),
    Column("neuron_alignment_values", "neuron_alignment_values", "floats", absent=[]),
    Column("neuron_alignment_l1", "neuron_alignment_l1", "floats", absent=[]),
    Column("correlated_neurons_indices", "correlated_neurons_indices", "ints", absent=[]),
    Column("correlated_neurons_pearson", "correlated_neurons_pearson", "floats", absent=[]),
    Column("correlated_neurons_l1", "correlated_neurons_l1", "floats", absent=[]),
    Column("correlated_features_indices", "correlated_features_indices", "ints"),  # see above
    Column("correlated_features_pearson", "correlated_features_pearson", "floats"),
    Column("correlated_features_l1", "correlated_features_l1", "floats"),
    Column("decoder_weights_dist", "decoder_weights_dist", "floats", absent=[]),
    Column("umap_x", "umap_x", "float"),
    Column("umap_y", "umap_y", "float"),
    Column("umap_cluster", "umap_cluster", "int"),
    Column("umap_log_feature_sparsity", "umap_log_feature_sparsity", "float"),
    Column("hasVector", "has_vector", "bool", nullable=False),
    Column("vector", "vector", "floats", absent=[]),
    Column("vectorLabel", "vector_label", "str"),
    Column("vectorDefaultSteerStrength", "vector_default_steer_strength", "float", absent=10.0),
    Column("hookName", "hook_name", "str"),
    Column("creatorId", "creator_external_id", "str"),
    Column("sourceSetName", "source_set_name", "str"),
    # ours; derived from frac_nonzero == 0 if absent
    Column("isDead", "is_dead", "bool", nullable=False, ours=True),
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
    Column("dataSource", "data_source", "str"),
    Column("dataIndex", "data_index", "int"),
    Column("dfaValues", "dfa_values", "floats", absent=[]),
    Column("dfaTargetIndex", "dfa_target_index", "int"),
    Column("dfaMaxValue", "dfa_max_value", "float"),
    Column("lossValues", "loss_values", "floats", absent=[]),
    Column("logitContributions", "logit_contributions", "str"),
    Column("zKIndices", "z_k_indices", "ints", absent=[]),
    Column("zQIndices", "z_q_indices", "ints", absent=[]),
    Column("zValues", "z_values", "floats", absent=[]),
    Column("creatorId", "creator_external_id", "str"),
)

EXPLANATION_COLUMNS: tuple[Column, ...] = (
    Column("id", "external_id", "str", required=True, nullable=False),
    Column("description", "description", "str", required=True, nullable=False),
    Column("embedding", "embedding", "vector"),
    Column("typeName", "type_id", "str"),
    Column("explanationModelName", "explanation_model_id", "str"),
    Column("scoreV1", "score_v1", "float", nullable=False),
    Column("scoreV2", "score_v2", "float"),
    Column("umap_x", "umap_x", "float", absent=0.0),
    Column("umap_y", "umap_y", "float", absent=0.0),
    Column("umap_cluster", "umap_cluster", "int", absent=0),
    Column("umap_log_feature_sparsity", "umap_log_feature_sparsity", "float", absent=0.0),
    Column("notes", "notes", "str", nullable=False),
    Column("authorId", "author_external_id", "str"),
    Column("embedder", "embedder", "str", nullable=False, ours=True),  # inferred from the width if absent
)

BATCH_COLUMNS: dict[str, tuple[Column, ...]] = {
    "features": FEATURE_COLUMNS, "activations": ACTIVATION_COLUMNS, "explanations": EXPLANATION_COLUMNS,
}

# Metadata rows: (export key, our field). Every key, known or not, is also kept whole in UpstreamRecord.
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
    "eval_type.jsonl": ("EvalType", {
        "name": "name", "displayName": "display_name", "description": "description",
        "longerDescription": "longer_description", "outputSchema": "output_schema", "featured": "featured",
        "url": "url"}),
}
# Neuronpedia's table of each metadata / config file (UpstreamRecord.table).
UPSTREAM_TABLES = {
    "release.jsonl": "SourceRelease", "model.jsonl": "Model", "sourceset.jsonl": "SourceSet",
    "source.jsonl": "Source", "explanation_type.jsonl": "ExplanationType",
    "explanation_model_type.jsonl": "ExplanationModelType",
    "explanation_score_type.jsonl": "ExplanationScoreType",
    "explanation_score_model.jsonl": "ExplanationScoreModel", "eval_type.jsonl": "EvalType",
    "inference_hosts.jsonl": "InferenceHostSource",
}

# Neuronpedia's columns per table (apps/webapp/prisma/schema.prisma), in their order; `required`: NOT NULL
# without a default, which its importer (Prisma create / INSERT ... jsonb_to_recordset) needs in every row.
# An export for Neuronpedia writes these keys and no others.
NP_COLUMNS: dict[str, tuple[str, ...]] = {
    "Model": ("id", "displayNameShort", "displayName", "creatorId", "tlensId", "dimension", "visibility",
              "inferenceEnabled", "instruct", "layers", "neuronsPerLayer", "createdAt", "owner", "updatedAt",
              "website", "defaultSourceId", "defaultSourceSetName", "thinking", "defaultGraphSourceSetName",
              "openRouterId"),
    "SourceRelease": ("name", "visibility", "isNewUi", "featured", "description", "descriptionShort", "urls",
                      "creatorEmail", "creatorName", "creatorNameShort", "creatorId", "defaultSourceId",
                      "defaultUmapSourceIds", "createdAt", "defaultSourceSetName"),
    "SourceSet": ("modelId", "name", "hasDashboards", "visibility", "description", "type", "creatorName",
                  "urls", "creatorEmail", "creatorId", "releaseName", "defaultRange", "defaultShowBreaks",
                  "showDfa", "showCorrelated", "showHeadAttribution", "showUmap", "createdAt",
                  "defaultOfModelId", "allowInferenceSearch", "graphEnabled", "defaultGraphModelId",
                  "hasGraphs", "similarityMatrixEnabled"),
    "Source": ("id", "modelId", "hasDashboards", "inferenceEnabled", "saelensConfig", "saelensRelease",
               "saelensSaeId", "hfRepoId", "hfFolderId", "visibility", "setName", "creatorId", "hasUmap",
               "hasUmapLogSparsity", "hasUmapClusters", "num_prompts", "num_tokens_in_prompt", "dataset",
               "notes", "createdAt", "defaultOfModelId", "cosSimMatchModelId", "cosSimMatchSourceId"),
    "ExplanationType": ("name", "displayName", "description", "featured", "isAttention",
                        "explainerModelSettingsId", "settings", "url", "creatorName", "creatorId",
                        "createdAt", "updatedAt"),
    "ExplanationModelType": ("name", "displayName", "description", "featured", "openRouterModelId", "url",
                             "creatorName", "createdAt", "updatedAt"),
    "ExplanationScoreType": ("name", "displayName", "description", "featured", "isAttention",
                             "scoreDescription", "scorerModel", "settings", "url", "creatorName", "creatorId",
                             "createdAt", "updatedAt"),
    "ExplanationScoreModel": ("name", "displayName", "description", "featured", "openRouterModelId", "url",
                              "creatorName", "createdAt", "updatedAt"),
    "EvalType": ("name", "displayName", "description", "longerDescription", "outputSchema", "featured", "url",
                 "createdAt", "updatedAt"),
    "InferenceHostSource": ("id", "name", "hostUrl", "modelId", "createdAt", "updatedAt", "engine",
                            "runpodServerlessUrl"),
    "InferenceHostSourceOnSource": ("sourceId", "sourceModelId", "inferenceHostId"),
}
NP_REQUIRED: dict[str, tuple[str, ...]] = {
    "Model": ("id", "creatorId", "layers", "neuronsPerLayer", "owner"),
    "SourceRelease": ("name", "description", "creatorName", "creatorId"),
    "SourceSet": ("modelId", "name", "description", "creatorName", "creatorId"),
    "Source": ("id", "modelId", "setName", "creatorId"),
    "ExplanationType": ("name", "displayName", "description", "creatorName", "creatorId"),
    "ExplanationModelType": ("name", "displayName", "description", "creatorName"),
    "ExplanationScoreType": ("name", "displayName", "description", "creatorName", "creatorId"),
    "ExplanationScoreModel": ("name", "displayName", "description", "creatorName"),
    "EvalType": ("name", "displayName", "description", "outputSchema"),
    "InferenceHostSource": ("id", "name", "hostUrl", "modelId", "updatedAt"),
    "InferenceHostSourceOnSource": ("sourceId", "sourceModelId", "inferenceHostId"),
}
