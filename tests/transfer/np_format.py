"""Test helpers: Neuronpedia's SAEDashboard converter output, emulated, and a field-by-field comparison of
export files with what an import stored.

`write_converter_export` writes what `convert-saedashboard-to-neuronpedia-export.py` writes: orjson
(compact, `index` as a number), the db_models dataclasses' fields in their order (`"dimension": null`,
`"layers": 0`, `"inferenceHosts": []`, `zIndices`/`zValues` null...), features and activations of one
SAEDashboard batch file per `batch-N.jsonl.gz`, no explanations and no config folder.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from features.models import (
    Activation,
    Explanation,
    Feature,
    InferenceHostSource,
    Model,
    Source,
    SourceRelease,
    SourceSet,
    UpstreamRecord,
)
from transfer.importer.layout import (
    ACTIVATION_COLUMNS,
    CONFIG_FIELDS,
    EXPLANATION_COLUMNS,
    FEATURE_COLUMNS,
    UPSTREAM_TABLES,
)
from transfer.importer.rows import parse_vector_text

CREATED = dt.datetime(2025, 3, 1, 9, 30, 0, 123456)  # noqa: DTZ001 - the converter's datetime.now()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def _dump(path: Path, rows: list[dict[str, Any]], gz: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(data, compresslevel=5))
    else:
        path.write_bytes(data)


def write_converter_export(
    root: Path,
    *,
    model: str = "gemma-2-2b",
    set_id: str = "gemmascope-res-16k",
    layer: int = 12,
    features_per_batch: int = 3,
    batches: int = 2,
    creator: str = "clkht01d40000jv08hvalcvly",
) -> Path:
    rng = np.random.default_rng(7)
    source_id = f"{layer}-{set_id}"
    folder = root / model / source_id
    _dump(
        folder / "release.jsonl",
        [
            {
                "name": "gemma-scope",
                "description": "Gemma Scope",
                "creatorName": "Google DeepMind",
                "creatorId": creator,
                "visibility": "PUBLIC",
                "isNewUi": False,
                "featured": False,
                "descriptionShort": "Gemma Scope",
                "urls": ["https://huggingface.co/google/gemma-scope"],
                "creatorEmail": None,
                "creatorNameShort": "Google DeepMind",
                "defaultSourceSetName": None,
                "defaultSourceId": None,
                "defaultUmapSourceIds": [],
                "createdAt": CREATED,
            }
        ],
    )
    _dump(
        folder / "model.jsonl",
        [
            {
                "id": model,
                "instruct": False,
                "creatorId": creator,
                "displayNameShort": model,
                "displayName": model,
                "tlensId": None,
                "dimension": None,
                "visibility": "PUBLIC",
                "defaultSourceSetName": None,
                "defaultSourceId": None,
                "inferenceEnabled": True,
                "layers": 0,
                "neuronsPerLayer": 0,
                "createdAt": CREATED,
                "owner": "",
                "updatedAt": CREATED,
                "website": None,
            }
        ],
    )
    _dump(
        folder / "sourceset.jsonl",
        [
            {
                "modelId": model,
                "name": set_id,
                "creatorId": creator,
                "hasDashboards": True,
                "visibility": "PUBLIC",
                "description": "Residual Stream - 16k",
                "type": "",
                "creatorName": "Google DeepMind",
                "urls": [],
                "creatorEmail": None,
                "releaseName": "gemma-scope",
                "defaultOfModelId": None,
                "defaultRange": 1,
                "defaultShowBreaks": True,
                "showDfa": False,
                "showCorrelated": False,
                "showHeadAttribution": False,
                "showUmap": False,
                "createdAt": CREATED,
            }
        ],
    )
    _dump(
        folder / "source.jsonl",
        [
            {
                "id": source_id,
                "modelId": model,
                "setName": set_id,
                "creatorId": creator,
                "hasDashboards": True,
                "inferenceEnabled": False,
                "inferenceHosts": [],
                "saelensConfig": None,
                "saelensRelease": None,
                "saelensSaeId": None,
                "hfRepoId": "google/gemma-scope-2b-pt-res",
                "hfFolderId": "layer_12/width_16k",
                "visibility": "PUBLIC",
                "defaultOfModelId": None,
                "hasUmap": False,
                "hasUmapLogSparsity": False,
                "hasUmapClusters": False,
                "num_prompts": 24576,
                "num_tokens_in_prompt": 8,
                "dataset": "monology/pile-uncopyrighted",
                "notes": None,
                "createdAt": CREATED,
            }
        ],
    )
    counter = 0
    for batch in range(batches):
        features, activations = [], []
        for index in range(batch * features_per_batch, (batch + 1) * features_per_batch):
            with_vector = index == 1
            acts = []
            for _ in range(2):
                values = [float(v) for v in np.round(rng.uniform(0, 5, 8), 4)]
                top = max(values)
                counter += 1
                acts.append(
                    {
                        "id": f"c1a2b{counter:020x}"[:25],
                        "tokens": ["<bos>", " the", " cat", " sat", " on", " a", " mat", "."],
                        "index": index,
                        "layer": source_id,
                        "modelId": model,
                        "maxValue": top,
                        "maxValueTokenIndex": values.index(top),
                        "minValue": min(values),
                        "values": values,
                        "creatorId": creator,
                        "dataSource": None,
                        "dataIndex": None,
                        "dfaValues": [],
                        "dfaTargetIndex": None,
                        "dfaMaxValue": None,
                        "createdAt": CREATED,
                        "lossValues": [],
                        "logitContributions": None,
                        "binMin": 0.5,
                        "binMax": top,
                        "binContains": 0.25,
                        "qualifyingTokenIndex": values.index(top),
                        "zIndices": None,
                        "zValues": None,
                    }
                )
            max_act = max(a["maxValue"] for a in acts)
            features.append(
                {
                    "modelId": model,
                    "layer": source_id,
                    "index": index,
                    "creatorId": creator,
                    "createdAt": CREATED,
                    "maxActApprox": max_act,
                    "hasVector": with_vector,
                    "vector": [0.5, -0.25, 0.125] if with_vector else [],
                    "vectorLabel": None,
                    "vectorDefaultSteerStrength": max_act if with_vector else 10,
                    "hookName": f"blocks.{layer}.hook_resid_post" if with_vector else None,
                    "topkCosSimIndices": [],
                    "topkCosSimValues": [],
                    "neuron_alignment_indices": [3, 1],
                    "neuron_alignment_values": [0.5, 0.25],
                    "neuron_alignment_l1": [0.1, 0.05],
                    "correlated_neurons_indices": [2],
                    "correlated_neurons_pearson": [0.3],
                    "correlated_neurons_l1": [0.2],
                    "correlated_features_indices": [4],
                    "correlated_features_pearson": [0.6],
                    "correlated_features_l1": [0.7],
                    "neg_str": [" dog"],
                    "neg_values": [-0.5],
                    "pos_str": [" cat"],
                    "pos_values": [1.5],
                    "frac_nonzero": 0.01,
                    "freq_hist_data_bar_heights": [1.0, 2.0],
                    "freq_hist_data_bar_values": [0.5, 1.0],
                    "logits_hist_data_bar_heights": [3.0],
                    "logits_hist_data_bar_values": [0.1],
                    "decoder_weights_dist": [],
                    "sourceSetName": None,
                }
            )
            activations.extend(acts)
        _dump(folder / "features" / f"batch-{batch}.jsonl", features, gz=True)
        _dump(folder / "activations" / f"batch-{batch}.jsonl", activations, gz=True)
    return folder


# ------------------------------------------------------------------------------------------ comparison


def same(expected: Any, actual: Any, key: str) -> None:
    """Equal, with floats compared at float32 precision (our columns are real / float4)."""
    if isinstance(expected, list) and isinstance(actual, list | tuple | np.ndarray):
        assert len(expected) == len(actual), key
        for e, a in zip(expected, actual, strict=True):
            same(e, a, key)
    elif isinstance(expected, float) and not isinstance(actual, bool) and isinstance(actual, float | int):
        if math.isnan(expected):
            assert math.isnan(actual), key
        else:
            assert np.float32(expected) == np.float32(actual), f"{key}: {expected!r} != {actual!r}"
    else:
        assert expected == actual, f"{key}: {expected!r} != {actual!r}"


def _value(obj: Any, column: str) -> Any:
    value = getattr(obj, column)
    if hasattr(value, "tolist"):
        value = value.tolist()
    return value


def assert_batch_rows_stored(folder: Path, model_id: str, source_name: str) -> dict[str, int]:
    """Every key of every row of the source's features/activations/explanations files equals what is
    stored (by Neuronpedia's identity: (source, index) for features, `id` for the others)."""
    source = Source.objects.get(model_id=model_id, name=source_name)
    counts = {"features": 0, "activations": 0, "explanations": 0}
    features = {f.index: f for f in Feature.objects.filter(source=source)}
    for path in sorted((folder / "features").glob("*.jsonl.gz")):
        for row in read_jsonl(path):
            feature = features[int(row["index"])]
            for col in FEATURE_COLUMNS:
                if col.key in row:
                    same(row[col.key], _value(feature, col.column), f"{path.name} {row['index']} {col.key}")
            assert (row["modelId"], row["layer"]) == (model_id, source_name)
            counts["features"] += 1
    assert len(features) == counts["features"]
    activations = {
        a.external_id: a for a in Activation.objects.filter(feature__source=source).select_related("feature")
    }
    for path in sorted((folder / "activations").glob("*.jsonl.gz")):
        for row in read_jsonl(path):
            act = activations[row["id"]]
            assert act.feature.index == int(row["index"])
            for col in ACTIVATION_COLUMNS:
                if col.key in row:
                    expected = row[col.key]
                    if col.key == "dataIndex" and expected is not None:
                        expected = int(expected)
                    same(expected, _value(act, col.column), f"{path.name} {row['id']} {col.key}")
            if row.get("zIndices") is not None:
                same(row["zIndices"], [act.z_k_indices, act.z_q_indices], "zIndices")
            counts["activations"] += 1
    assert len(activations) == counts["activations"]
    explanations = {
        e.external_id: e for e in Explanation.objects.filter(feature__source=source).select_related("feature")
    }
    for path in sorted((folder / "explanations").glob("*.jsonl.gz")):
        for row in read_jsonl(path):
            exp = explanations[row["id"]]
            assert exp.feature.index == int(row["index"])
            for col in EXPLANATION_COLUMNS:
                if col.key not in row or col.key == "embedding":
                    continue
                same(row[col.key], _value(exp, col.column), f"{path.name} {row['id']} {col.key}")
            embedding = row.get("embedding")
            if embedding is None:
                assert exp.embedding is None
            else:
                values = (
                    parse_vector_text("embedding", embedding) if isinstance(embedding, str) else embedding
                )
                same(values, _value(exp, "embedding"), f"{row['id']} embedding")
                assert exp.embedder
            counts["explanations"] += 1
    assert len(explanations) == counts["explanations"]
    return counts


def _json_equal(expected: dict[str, Any], stored: dict[str, Any]) -> None:
    assert stored == expected


def assert_metadata_stored(folder: Path, model_id: str, source_name: str) -> None:
    """Every key of model/release/sourceset/source.jsonl and the inference host files is kept: the mapped
    ones in our columns (null stays null where the column allows it), all of them in UpstreamRecord."""
    from transfer.importer.layout import MODEL_FIELDS, RELEASE_FIELDS, SOURCE_FIELDS, SOURCESET_FIELDS

    source = Source.objects.get(model_id=model_id, name=source_name)
    checks = [
        ("model.jsonl", Model.objects.get(id=model_id), MODEL_FIELDS, model_id),
        ("source.jsonl", source, SOURCE_FIELDS, f"{model_id}/{source_name}"),
        ("sourceset.jsonl", source.source_set, SOURCESET_FIELDS, f"{model_id}/{source.source_set.name}"),
    ]
    if (folder / "release.jsonl").exists():
        checks.append(
            (
                "release.jsonl",
                SourceRelease.objects.get(name=read_jsonl(folder / "release.jsonl")[0]["name"]),
                RELEASE_FIELDS,
                None,
            )
        )
    for name, obj, mapping, key in checks:
        row = read_jsonl(folder / name)[0]
        for np_key, field in mapping.items():
            if np_key not in row or (name == "source.jsonl" and np_key == "id"):
                continue
            stored = getattr(obj, field)
            model_field = type(obj)._meta.get_field(field)
            expected = row[np_key]
            if expected is None and not model_field.null:
                expected = (
                    "" if isinstance(stored, str) else stored
                )  # a NOT NULL column of ours: kept upstream
            if np_key == "defaultSourceId":
                stored = obj.default_source_name
            same(expected, stored, f"{name} {np_key}")
        upstream = UpstreamRecord.objects.get(table=UPSTREAM_TABLES[name], key=key or row["name"])
        _json_equal(row, upstream.record)
    assert isinstance(source.source_set, SourceSet)
    hosts = folder / "inference_hosts.jsonl"
    if hosts.exists():
        for row in read_jsonl(hosts):
            host = InferenceHostSource.objects.get(id=row["id"])
            same(
                [row["name"], row["hostUrl"], row["engine"], row["modelId"], row["runpodServerlessUrl"]],
                [host.name, host.host_url, host.engine, host.model_id, host.runpod_serverless_url],
                "host",
            )
            _json_equal(row, UpstreamRecord.objects.get(table="InferenceHostSource", key=row["id"]).record)
        linked = {row["inferenceHostId"] for row in read_jsonl(folder / "inference_hosts_on_source.jsonl")}
        assert set(source.upstream_inference_hosts.values_list("id", flat=True)) == linked


def assert_config_stored(root: Path) -> None:
    from django.apps import apps

    for filename, (model_name, mapping) in CONFIG_FIELDS.items():
        model = apps.get_model("features", model_name)
        for row in read_jsonl(root / "config" / filename):
            obj = model.objects.get(name=row["name"])
            for np_key, field in mapping.items():
                if np_key in row:
                    stored = getattr(obj, field)
                    expected = row[np_key]
                    if expected is None and not model._meta.get_field(field).null:
                        expected = "" if isinstance(stored, str) else stored
                    same(expected, stored, f"{filename} {np_key}")
            _json_equal(
                row, UpstreamRecord.objects.get(table=UPSTREAM_TABLES[filename], key=row["name"]).record
            )
