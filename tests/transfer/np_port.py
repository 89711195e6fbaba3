"""A port of Neuronpedia's import (apps/webapp/app/api/admin/import/route.ts + lib/db/import.ts) to run on
export files in the tests, against our own minimal copy of its tables.

DDL: the columns, types, NOT NULL constraints, defaults, keys and foreign keys of the tables an import
writes, as its Prisma schema / migrations define them (written here by hand, so the test needs no copy of
Neuronpedia). Import, as Neuronpedia does it:
- config and metadata rows go through Prisma `create`/`upsert` with the parsed line as `data`: a key that
  is not a column is an error, a NOT NULL column without default that is missing is an error, types must
  convert (`prisma_create`);
- batch files go through `importJsonlString`: "\\u0000" replaced by a space, `zIndices` split into
  zKIndices/zQIndices for activations, the columns of the first line that exist in the table, one
  `INSERT ... SELECT ... FROM jsonb_to_recordset($1::jsonb) ... ON CONFLICT DO NOTHING` per 65,000 lines.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from django.db import connection

SCHEMA = "np_port"
DDL = """
CREATE TYPE "Visibility" AS ENUM ('PUBLIC', 'UNLISTED', 'PRIVATE');
CREATE TYPE "InferenceEngine" AS ENUM ('TRANSFORMER_LENS', 'NNSIGHT', 'CSPACE');
CREATE TABLE "User" ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL);
CREATE TABLE "Model" ("id" TEXT PRIMARY KEY, "displayNameShort" TEXT NOT NULL DEFAULT '',
  "displayName" TEXT NOT NULL DEFAULT '', "creatorId" TEXT NOT NULL REFERENCES "User"("id"), "tlensId" TEXT,
  "dimension" INTEGER, "visibility" "Visibility" NOT NULL DEFAULT 'PRIVATE',
  "inferenceEnabled" BOOLEAN NOT NULL DEFAULT false, "instruct" BOOLEAN NOT NULL DEFAULT false,
  "layers" INTEGER NOT NULL, "neuronsPerLayer" INTEGER NOT NULL,
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "owner" TEXT NOT NULL,
  "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "website" TEXT, "defaultSourceId" TEXT,
  "defaultSourceSetName" TEXT, "thinking" BOOLEAN NOT NULL DEFAULT false, "defaultGraphSourceSetName" TEXT,
  "openRouterId" TEXT);
CREATE TABLE "SourceRelease" ("name" TEXT PRIMARY KEY, "visibility" "Visibility" NOT NULL DEFAULT 'PRIVATE',
  "isNewUi" BOOLEAN NOT NULL DEFAULT false, "featured" BOOLEAN NOT NULL DEFAULT false,
  "description" TEXT NOT NULL, "descriptionShort" TEXT, "urls" TEXT[], "creatorEmail" TEXT,
  "creatorName" TEXT NOT NULL, "creatorNameShort" TEXT, "creatorId" TEXT NOT NULL REFERENCES "User"("id"),
  "defaultSourceId" TEXT, "defaultUmapSourceIds" TEXT[] DEFAULT ARRAY[]::TEXT[],
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "defaultSourceSetName" TEXT);
CREATE TABLE "SourceSet" ("modelId" TEXT NOT NULL REFERENCES "Model"("id"), "name" TEXT NOT NULL,
  "hasDashboards" BOOLEAN NOT NULL DEFAULT true, "visibility" "Visibility" NOT NULL DEFAULT 'PRIVATE',
  "description" TEXT NOT NULL, "type" TEXT NOT NULL DEFAULT '', "creatorName" TEXT NOT NULL, "urls" TEXT[],
  "creatorEmail" TEXT, "creatorId" TEXT NOT NULL REFERENCES "User"("id"),
  "releaseName" TEXT REFERENCES "SourceRelease"("name"), "defaultRange" INTEGER NOT NULL DEFAULT 1,
  "defaultShowBreaks" BOOLEAN NOT NULL DEFAULT true, "showDfa" BOOLEAN NOT NULL DEFAULT false,
  "showCorrelated" BOOLEAN NOT NULL DEFAULT false, "showHeadAttribution" BOOLEAN NOT NULL DEFAULT false,
  "showUmap" BOOLEAN NOT NULL DEFAULT false, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "defaultOfModelId" TEXT, "allowInferenceSearch" BOOLEAN NOT NULL DEFAULT true,
  "graphEnabled" BOOLEAN NOT NULL DEFAULT false, "defaultGraphModelId" TEXT,
  "hasGraphs" BOOLEAN NOT NULL DEFAULT false, "similarityMatrixEnabled" BOOLEAN NOT NULL DEFAULT false,
  PRIMARY KEY ("modelId", "name"));
CREATE TABLE "Source" ("id" TEXT NOT NULL, "modelId" TEXT NOT NULL REFERENCES "Model"("id"),
  "hasDashboards" BOOLEAN NOT NULL DEFAULT true, "inferenceEnabled" BOOLEAN NOT NULL DEFAULT false,
  "saelensConfig" JSONB, "saelensRelease" TEXT, "saelensSaeId" TEXT, "hfRepoId" TEXT, "hfFolderId" TEXT,
  "visibility" "Visibility" NOT NULL DEFAULT 'PRIVATE', "setName" TEXT NOT NULL,
  "creatorId" TEXT NOT NULL REFERENCES "User"("id"), "hasUmap" BOOLEAN NOT NULL DEFAULT false,
  "hasUmapLogSparsity" BOOLEAN NOT NULL DEFAULT false, "hasUmapClusters" BOOLEAN NOT NULL DEFAULT false,
  "num_prompts" INTEGER, "num_tokens_in_prompt" INTEGER, "dataset" TEXT, "notes" TEXT,
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "defaultOfModelId" TEXT,
  "cosSimMatchModelId" TEXT, "cosSimMatchSourceId" TEXT, PRIMARY KEY ("modelId", "id"),
  FOREIGN KEY ("modelId", "setName") REFERENCES "SourceSet"("modelId", "name"));
CREATE TABLE "InferenceHostSource" ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "hostUrl" TEXT NOT NULL,
  "modelId" TEXT NOT NULL REFERENCES "Model"("id"),
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL,
  "engine" "InferenceEngine" NOT NULL DEFAULT 'TRANSFORMER_LENS', "runpodServerlessUrl" TEXT);
CREATE TABLE "InferenceHostSourceOnSource" ("sourceId" TEXT NOT NULL, "sourceModelId" TEXT NOT NULL,
  "inferenceHostId" TEXT NOT NULL REFERENCES "InferenceHostSource"("id"),
  PRIMARY KEY ("sourceId", "sourceModelId", "inferenceHostId"),
  FOREIGN KEY ("sourceModelId", "sourceId") REFERENCES "Source"("modelId", "id"));
CREATE TABLE "Neuron" ("modelId" TEXT NOT NULL REFERENCES "Model"("id"), "layer" TEXT NOT NULL,
  "index" TEXT NOT NULL, "sourceSetName" TEXT, "creatorId" TEXT REFERENCES "User"("id"),
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "maxActApprox" DOUBLE PRECISION DEFAULT 0,
  "hasVector" BOOLEAN NOT NULL DEFAULT false, "vector" DOUBLE PRECISION[] DEFAULT ARRAY[]::DOUBLE PRECISION[],
  "vectorLabel" TEXT, "vectorDefaultSteerStrength" DOUBLE PRECISION DEFAULT 10, "hookName" TEXT,
  "topkCosSimIndices" INTEGER[], "topkCosSimValues" DOUBLE PRECISION[], "neuron_alignment_indices" INTEGER[],
  "neuron_alignment_values" DOUBLE PRECISION[], "neuron_alignment_l1" DOUBLE PRECISION[],
  "correlated_neurons_indices" INTEGER[], "correlated_neurons_pearson" DOUBLE PRECISION[],
  "correlated_neurons_l1" DOUBLE PRECISION[], "correlated_features_indices" INTEGER[],
  "correlated_features_pearson" DOUBLE PRECISION[], "correlated_features_l1" DOUBLE PRECISION[],
  "neg_str" TEXT[], "neg_values" DOUBLE PRECISION[], "pos_str" TEXT[], "pos_values" DOUBLE PRECISION[],
  "frac_nonzero" DOUBLE PRECISION NOT NULL DEFAULT 0, "freq_hist_data_bar_heights" DOUBLE PRECISION[],
  "freq_hist_data_bar_values" DOUBLE PRECISION[], "logits_hist_data_bar_heights" DOUBLE PRECISION[],
  "logits_hist_data_bar_values" DOUBLE PRECISION[], "decoder_weights_dist" DOUBLE PRECISION[],
  "umap_cluster" INTEGER, "umap_log_feature_sparsity" DOUBLE PRECISION, "umap_x" DOUBLE PRECISION,
  "umap_y" DOUBLE PRECISION, PRIMARY KEY ("modelId", "layer", "index"),
  FOREIGN KEY ("modelId", "layer") REFERENCES "Source"("modelId", "id"),
  FOREIGN KEY ("modelId", "sourceSetName") REFERENCES "SourceSet"("modelId", "name"));
CREATE TABLE "Activation" ("id" TEXT PRIMARY KEY, "tokens" TEXT[], "dataIndex" TEXT, "index" TEXT NOT NULL,
  "layer" TEXT NOT NULL, "modelId" TEXT NOT NULL, "dataSource" TEXT, "maxValue" DOUBLE PRECISION NOT NULL,
  "maxValueTokenIndex" INTEGER NOT NULL, "minValue" DOUBLE PRECISION NOT NULL, "values" DOUBLE PRECISION[],
  "dfaValues" DOUBLE PRECISION[] DEFAULT ARRAY[]::DOUBLE PRECISION[], "dfaTargetIndex" INTEGER,
  "dfaMaxValue" DOUBLE PRECISION, "creatorId" TEXT NOT NULL REFERENCES "User"("id"),
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "lossValues" DOUBLE PRECISION[],
  "logitContributions" TEXT, "binMin" DOUBLE PRECISION, "binMax" DOUBLE PRECISION,
  "binContains" DOUBLE PRECISION, "qualifyingTokenIndex" INTEGER, "zKIndices" INTEGER[],
  "zQIndices" INTEGER[], "zValues" DOUBLE PRECISION[],
  FOREIGN KEY ("modelId", "layer", "index") REFERENCES "Neuron"("modelId", "layer", "index"));
CREATE TABLE "ExplanationType" ("name" TEXT PRIMARY KEY, "displayName" TEXT NOT NULL,
  "description" TEXT NOT NULL, "featured" BOOLEAN NOT NULL DEFAULT true,
  "isAttention" BOOLEAN NOT NULL DEFAULT false, "explainerModelSettingsId" TEXT, "settings" TEXT, "url" TEXT,
  "creatorName" TEXT NOT NULL, "creatorId" TEXT NOT NULL REFERENCES "User"("id"),
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE "ExplanationModelType" ("name" TEXT PRIMARY KEY, "displayName" TEXT NOT NULL,
  "description" TEXT NOT NULL, "featured" BOOLEAN NOT NULL DEFAULT true, "openRouterModelId" TEXT,
  "url" TEXT, "creatorName" TEXT NOT NULL, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE "ExplanationScoreType" ("name" TEXT PRIMARY KEY, "displayName" TEXT NOT NULL,
  "description" TEXT NOT NULL, "featured" BOOLEAN NOT NULL DEFAULT true,
  "isAttention" BOOLEAN NOT NULL DEFAULT false, "scoreDescription" TEXT, "scorerModel" TEXT, "settings" TEXT,
  "url" TEXT, "creatorName" TEXT NOT NULL, "creatorId" TEXT NOT NULL REFERENCES "User"("id"),
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE "ExplanationScoreModel" ("name" TEXT PRIMARY KEY, "displayName" TEXT NOT NULL,
  "description" TEXT NOT NULL, "featured" BOOLEAN NOT NULL DEFAULT true, "openRouterModelId" TEXT,
  "url" TEXT, "creatorName" TEXT NOT NULL, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE "EvalType" ("name" TEXT PRIMARY KEY, "displayName" TEXT NOT NULL, "description" TEXT NOT NULL,
  "longerDescription" TEXT NOT NULL DEFAULT '', "outputSchema" JSONB NOT NULL,
  "featured" BOOLEAN NOT NULL DEFAULT false, "url" TEXT,
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE "Explanation" ("id" TEXT PRIMARY KEY, "modelId" TEXT NOT NULL, "layer" TEXT NOT NULL,
  "index" TEXT NOT NULL, "embedding" vector(256), "description" TEXT NOT NULL,
  "authorId" TEXT NOT NULL REFERENCES "User"("id"), "triggeredByUserId" TEXT, "notes" TEXT,
  "scoreV1" DOUBLE PRECISION NOT NULL DEFAULT 0, "scoreV2" DOUBLE PRECISION,
  "umap_x" DOUBLE PRECISION DEFAULT 0, "umap_y" DOUBLE PRECISION DEFAULT 0, "umap_cluster" INTEGER DEFAULT 0,
  "umap_log_feature_sparsity" DOUBLE PRECISION DEFAULT 0,
  "typeName" TEXT REFERENCES "ExplanationType"("name"),
  "explanationModelName" TEXT REFERENCES "ExplanationModelType"("name"),
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  FOREIGN KEY ("modelId", "layer", "index") REFERENCES "Neuron"("modelId", "layer", "index"));
"""
CONFIG = (
    ("explanation_model_type.jsonl", "ExplanationModelType"),
    ("explanation_type.jsonl", "ExplanationType"),
    ("explanation_score_model.jsonl", "ExplanationScoreModel"),
    ("explanation_score_type.jsonl", "ExplanationScoreType"),
    ("eval_type.jsonl", "EvalType"),
)


class PrismaError(Exception):
    pass


def create_schema(users: list[str]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cursor.execute(f"CREATE SCHEMA {SCHEMA}")
        cursor.execute(f"SET LOCAL search_path TO {SCHEMA}, public")
        cursor.execute(DDL)
        for user in users:
            cursor.execute('INSERT INTO "User" (id, name) VALUES (%s, %s)', [user, user])


def _columns(table: str) -> dict[str, tuple[str, bool]]:
    """column -> (type as import.ts spells it, required by Prisma: NOT NULL without a default)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, CASE WHEN data_type = 'ARRAY' THEN udt_name::regtype::text || '[]' "
            "WHEN data_type = 'USER-DEFINED' THEN "
            "(SELECT t.typname::text FROM pg_type t WHERE t.typname = c.udt_name) "
            "ELSE data_type END, is_nullable = 'NO' AND column_default IS NULL "
            "FROM information_schema.columns c WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position",
            [SCHEMA, table],
        )
        return {name: (kind, required) for name, kind, required in cursor.fetchall()}


def prisma_create(table: str, data: dict[str, Any], *, upsert_key: tuple[str, ...] = ()) -> None:
    """`prisma.<table>.create({data})` (or upsert on `upsert_key`): unknown keys and missing required
    columns are refused, as Prisma's validation does before any SQL."""
    columns = _columns(table)
    unknown = sorted(set(data) - set(columns))
    if unknown:
        raise PrismaError(f"Unknown argument `{unknown[0]}` for {table}.create()")
    missing = [c for c, (_, required) in columns.items() if required and data.get(c) is None]
    if missing:
        raise PrismaError(f"Argument `{missing[0]}` is missing for {table}.create()")
    keys = list(data)
    cols = ", ".join(f'"{k}"' for k in keys)
    conflict = ""
    if upsert_key:
        sets = (
            ", ".join(f'"{k}" = EXCLUDED."{k}"' for k in keys if k not in upsert_key)
            or f'"{keys[0]}" = EXCLUDED."{keys[0]}"'
        )
        conflict = (
            f" ON CONFLICT ({', '.join(chr(34) + k + chr(34) for k in upsert_key)}) DO UPDATE SET {sets}"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {SCHEMA}."{table}" ({cols}) SELECT {cols} FROM '
            f'jsonb_populate_record(NULL::{SCHEMA}."{table}", %s::jsonb){conflict}',
            [json.dumps(data)],
        )


def import_jsonl_string(table: str, jsonl: str) -> None:
    """importJsonlString(tableName, jsonlData). Like it, an empty file fails: it parses the first line
    (`JSON.parse('')`: "Unexpected end of JSON input")."""
    jsonl = jsonl.replace("\\u0000", " ")
    lines = [line for line in jsonl.strip().split("\n") if line.strip()]
    if table == "Activation":
        normalised = []
        for line in lines:
            parsed = json.loads(line)
            if isinstance(parsed.get("zIndices"), list):
                k, q = (parsed["zIndices"] + [None, None])[:2]
                if isinstance(k, list):
                    parsed["zKIndices"] = k
                if isinstance(q, list):
                    parsed["zQIndices"] = q
            normalised.append(json.dumps(parsed))
        lines = normalised
    available = set(json.loads(lines[0] if lines else ""))  # JSON.parse(firstLine)
    columns = [(name, kind) for name, (kind, _) in _columns(table).items() if name in available]
    defs = ", ".join(f'"{name}" {kind}' for name, kind in columns)
    names = ", ".join(f'"{name}"' for name, _ in columns)
    sql = (
        f'INSERT INTO {SCHEMA}."{table}" ({names}) SELECT {names} FROM jsonb_to_recordset(%s::jsonb) '
        f"AS t({defs}) ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL search_path TO {SCHEMA}, public")  # the vector type lives in public
        for start in range(0, len(lines), 65000):
            cursor.execute(sql, ["[" + ",".join(lines[start : start + 65000]) + "]"])


def _lines(path: Path) -> list[dict[str, Any]]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [json.loads(line) for line in data.decode().split("\n") if line]


def _text(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode()


def import_source(root: Path, model_id: str, source_id: str) -> None:
    """GET /api/admin/import?modelId&sourceId (explanations=true), from a local copy of the bucket."""
    for filename, table in CONFIG:  # importConfigFromS3: upsert by name
        for line in _lines(root / "config" / filename):
            prisma_create(table, line, upsert_key=("name",))
    folder = root / model_id / source_id
    for line in _lines(folder / "release.jsonl"):
        prisma_create("SourceRelease", line)
    for line in _lines(folder / "model.jsonl"):
        prisma_create("Model", line)
    for line in _lines(folder / "sourceset.jsonl"):
        prisma_create("SourceSet", {**line, "urls": line.get("urls") or []})
    for line in _lines(folder / "source.jsonl"):
        data = dict(line)
        if not data.get("inferenceHosts"):
            data.pop("inferenceHosts", None)  # `undefined`: Prisma leaves the relation alone
        prisma_create("Source", data)
    for line in _lines(folder / "inference_hosts.jsonl"):
        prisma_create("InferenceHostSource", line, upsert_key=("id",))
    for line in _lines(folder / "inference_hosts_on_source.jsonl"):
        prisma_create(
            "InferenceHostSourceOnSource", line, upsert_key=("sourceId", "sourceModelId", "inferenceHostId")
        )
    for kind, table in (
        ("features", "Neuron"),
        ("activations", "Activation"),
        ("explanations", "Explanation"),
    ):
        for path in sorted((folder / kind).glob("*.jsonl.gz")):
            import_jsonl_string(table, _text(path))


def rows(table: str, order: str) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT row_to_json(t) FROM {SCHEMA}."{table}" t ORDER BY {order}')
        return [row[0] for row in cursor.fetchall()]
