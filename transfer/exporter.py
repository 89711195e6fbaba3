"""Write a source from the database in Neuronpedia's export layout, as files Neuronpedia's importer accepts.

`{folder}/config/*.jsonl` (the five catalogs, eval types included), `{folder}/{model}/{source}/`
`{release,model,sourceset,source}.jsonl`, `inference_hosts.jsonl` + `inference_hosts_on_source.jsonl`, and
gzipped batches of 1,024 features (their activations in the same-numbered activations file) and 1,024
explanations. Every row has exactly Neuronpedia's columns (layout.NP_COLUMNS: no key of ours, which its
Prisma `create` would refuse) and every NOT NULL one (`creatorId`, `authorId`...): the ids an import kept,
else `creator_id` (like its exporter's DEFAULT_CREATOR_ID; the user must exist in the target instance).
Metadata and catalog rows start from the original row kept at import (UpstreamRecord), so a round trip
Neuronpedia -> us -> Neuronpedia loses nothing; our columns win where they differ, and an empty value of
ours over an upstream null writes the null. Explanation embeddings are written in pgvector's text form, as
Neuronpedia's exporter writes them (256-d only: its column is vector(256)). Each file is written to a
temporary name and renamed, so a re-run (or a crash) never leaves half a file.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import models as djm

from features.models import Activation, Explanation, Feature, Source, UpstreamRecord
from transfer.importer.layout import (
    ACTIVATION_COLUMNS,
    BATCH_SIZE,
    CONFIG_FIELDS,
    EXPLANATION_COLUMNS,
    FEATURE_COLUMNS,
    MODEL_FIELDS,
    NP_COLUMNS,
    NP_REQUIRED,
    RELEASE_FIELDS,
    SOURCE_FIELDS,
    SOURCESET_FIELDS,
    UPSTREAM_TABLES,
)
from transfer.importer.pipeline import Step

DEFAULT_CREATOR_ID = "clkht01d40000jv08hvalcvly"  # the id Neuronpedia's own scripts default to
NP_EMBEDDING_DIMS = 256
FILLERS: dict[str, Any] = {"description": "", "creatorName": "", "displayName": "", "owner": "",
                           "outputSchema": {}, "layers": 0, "neuronsPerLayer": 0, "hostUrl": ""}


def _json_value(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy (pgvector embeddings)
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _write(path: Path, rows: Iterable[dict[str, Any]], *, skip_empty: bool = False) -> int:
    """Write `rows` as JSONL (gzipped for .gz); with `skip_empty`, no rows means no file (and any old one
    removed): Neuronpedia's importJsonlString parses the first line of every batch file it lists, and an
    empty file fails its whole import ("Unexpected end of JSON input")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    if path.suffix == ".gz":
        out = gzip.open(tmp, "wt", compresslevel=5, encoding="utf-8")  # noqa: SIM115 - closed below
    else:
        out = tmp.open("w", encoding="utf-8")  # noqa: SIM115
    with out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
            count += 1
    if skip_empty and count == 0:
        tmp.unlink()
        path.unlink(missing_ok=True)
        return 0
    os.replace(tmp, path)
    return count


def _upstream(table: str, key: str) -> dict[str, Any]:
    row = UpstreamRecord.objects.filter(table=table, key=key).values_list("record", flat=True).first()
    return dict(row) if isinstance(row, dict) else {}


def np_record(table: str, key: str, obj: djm.Model, mapping: dict[str, str], creator_id: str,
              **extra: Any) -> dict[str, Any]:
    """One metadata / catalog row with exactly Neuronpedia's columns of `table`."""
    record = _upstream(table, key)
    for np_key, name in mapping.items():
        value = _json_value(getattr(obj, name))
        if value in ("", [], {}) and np_key in record and record[np_key] is None:
            value = None  # ours has no null here; the upstream row had one
        if np_key == "settings" and value is not None and not isinstance(value, str):
            value = json.dumps(value)  # a TEXT column there
        record[np_key] = value
    record.update(extra)
    for required in NP_REQUIRED[table]:
        if record.get(required) is None:
            record[required] = creator_id if required == "creatorId" else FILLERS.get(required, "")
    return {k: record[k] for k in NP_COLUMNS[table] if k in record}


def export_config(folder: Path, creator_id: str = DEFAULT_CREATOR_ID) -> dict[str, int]:
    counts = {}
    for filename, (model_name, mapping) in CONFIG_FIELDS.items():
        model = apps.get_model("features", model_name)
        table = UPSTREAM_TABLES[filename]
        counts[filename] = _write(folder / "config" / filename, (
            np_record(table, obj.pk, obj, mapping, creator_id) for obj in model.objects.order_by("name")))
    return counts


def export_metadata(source: Source, target: Path, creator_id: str = DEFAULT_CREATOR_ID) -> None:
    source_set = source.source_set
    release = source_set.release
    model_id = source.model_id
    if release is not None:
        _write(target / "release.jsonl", [np_record("SourceRelease", release.name, release, RELEASE_FIELDS,
                                                    creator_id)])
    _write(target / "model.jsonl", [np_record("Model", model_id, source.model, MODEL_FIELDS, creator_id)])
    _write(target / "sourceset.jsonl", [np_record(
        "SourceSet", f"{model_id}/{source_set.name}", source_set, SOURCESET_FIELDS, creator_id,
        modelId=model_id, releaseName=release.name if release else None)])
    _write(target / "source.jsonl", [np_record(
        "Source", f"{model_id}/{source.name}", source, SOURCE_FIELDS, creator_id, id=source.name,
        modelId=model_id, setName=source_set.name)])
    hosts = list(source.upstream_inference_hosts.order_by("id"))
    _write(target / "inference_hosts.jsonl", [np_record(
        "InferenceHostSource", host.id, host, {"id": "id", "name": "name", "hostUrl": "host_url",
                                               "engine": "engine", "modelId": "model_id",
                                               "runpodServerlessUrl": "runpod_serverless_url"}, creator_id)
        for host in hosts])
    _write(target / "inference_hosts_on_source.jsonl", [
        {"sourceId": source.name, "sourceModelId": model_id, "inferenceHostId": host.id} for host in hosts])


def _float4_text(value: float) -> str:
    import numpy as np  # noqa: PLC0415

    text = str(np.float32(value))
    return text[:-2] if text.endswith(".0") else text


def _embedding_text(values: Any) -> str | None:
    if values is None or len(values) != NP_EMBEDDING_DIMS:
        return None
    return "[" + ",".join(_float4_text(v) for v in values) + "]"


def _batch_row(values: dict[str, Any], columns: tuple, head: dict[str, Any]) -> dict[str, Any]:
    return {**head, **{c.key: _json_value(values[c.column]) for c in columns if not c.ours}}


def export_source(source: Source, folder: Path, on_step: Callable[[Step], None] | None = None, *,
                  creator_id: str = DEFAULT_CREATOR_ID) -> dict[str, Any]:
    """Write `source` under `folder`; returns the folder, the number of files and rows per table."""
    started = time.monotonic()
    target = folder / source.model_id / source.name
    export_config(folder, creator_id)
    export_metadata(source, target, creator_id)
    counts = {"features": 0, "activations": 0, "explanations": 0}
    feature_cols = ["id", "index", *(c.column for c in FEATURE_COLUMNS)]
    act_cols = ["id", "feature__index", *(c.column for c in ACTIVATION_COLUMNS)]
    features = Feature.objects.filter(source=source).order_by("index")
    batch, files, last = 0, 0, -1
    while True:
        t0 = time.monotonic()
        rows = list(features.filter(index__gt=last).values(*feature_cols)[:BATCH_SIZE])
        if not rows:
            break
        last = rows[-1]["index"]
        counts["features"] += _write(target / "features" / f"batch-{batch}.jsonl.gz", (
            _feature_row(r, source) for r in rows))
        activations = (Activation.objects.filter(feature_id__in=[r["id"] for r in rows])
                       .order_by("feature__index", "-max_value", "id").values(*act_cols).iterator(2000))
        counts["activations"] += _write(target / "activations" / f"batch-{batch}.jsonl.gz", (
            _activation_row(r, source, creator_id) for r in activations), skip_empty=True)
        files += 2
        if on_step:
            on_step(Step(f"features+activations/batch-{batch}", len(rows), time.monotonic() - t0))
        batch += 1
    counts["explanations"], explanation_files = _export_explanations(source, target, creator_id, on_step)
    return {"folder": str(folder), "path": str(target), "files": files + explanation_files,
            "tables": counts, "seconds": round(time.monotonic() - started, 2)}


def _head(source: Source, index: int) -> dict[str, Any]:
    return {"modelId": source.model_id, "layer": source.name, "index": str(index)}


def _feature_row(r: dict[str, Any], source: Source) -> dict[str, Any]:
    return _batch_row(r, FEATURE_COLUMNS, _head(source, r["index"]))


def _activation_row(r: dict[str, Any], source: Source, creator_id: str) -> dict[str, Any]:
    row = _batch_row(r, ACTIVATION_COLUMNS, _head(source, r["feature__index"]))
    row["id"] = r["external_id"] or f"np{r['id']}"
    row["creatorId"] = row["creatorId"] or creator_id  # NOT NULL there
    if row["dataIndex"] is not None:
        row["dataIndex"] = str(row["dataIndex"])  # a TEXT column there
    return row


def _export_explanations(source: Source, target: Path, creator_id: str,
                         on_step: Callable[[Step], None] | None) -> tuple[int, int]:
    columns = ["id", "feature__index", *(c.column for c in EXPLANATION_COLUMNS)]
    queryset = (Explanation.objects.filter(feature__source=source)
                .order_by("feature__index", "id").values(*columns))
    total, batch = 0, 0
    while True:
        t0 = time.monotonic()
        rows = list(queryset[batch * BATCH_SIZE:(batch + 1) * BATCH_SIZE])
        if not rows:
            return total, batch
        total += _write(target / "explanations" / f"batch-{batch}.jsonl.gz", (
            _explanation_row(r, source, creator_id) for r in rows))
        if on_step:
            on_step(Step(f"explanations/batch-{batch}", len(rows), time.monotonic() - t0))
        batch += 1


def _explanation_row(r: dict[str, Any], source: Source, creator_id: str) -> dict[str, Any]:
    row = _batch_row(r, EXPLANATION_COLUMNS, _head(source, r["feature__index"]))
    row["id"] = r["external_id"] or f"np{r['id']}"
    row["authorId"] = row["authorId"] or creator_id  # NOT NULL there
    row["embedding"] = _embedding_text(r["embedding"])
    row["notes"] = row["notes"] or None  # nullable there; we keep '' for none
    return row
