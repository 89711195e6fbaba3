"""Write a source from the database in Neuronpedia's export layout (features/importer/layout.py).

`{folder}/config/*.jsonl`, `{folder}/{model}/{source}/{release,model,sourceset,source}.jsonl` and gzipped
batches of 1,024 features (their activations in the same-numbered activations file) and 1,024
explanations. Keys are Neuronpedia's column names, plus a few of ours that Neuronpedia ignores
(isDead, embedder, num_features, hookName, hfId). Each file is written to a temporary name and renamed,
so a re-run (or a crash) never leaves half a file.
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

from features.importer.layout import (
    ACTIVATION_COLUMNS,
    BATCH_SIZE,
    CONFIG_FIELDS,
    EXPLANATION_COLUMNS,
    FEATURE_COLUMNS,
    MODEL_FIELDS,
    RELEASE_FIELDS,
    SOURCE_FIELDS,
    SOURCESET_FIELDS,
)
from features.importer.pipeline import Step
from features.models import Activation, Explanation, Feature, Source


def _json_value(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy (pgvector embeddings)
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _write(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    if path.suffix == ".gz":
        out = gzip.open(tmp, "wt", compresslevel=5, encoding="utf-8")  # noqa: SIM115 - closed below
    else:
        out = tmp.open("w", encoding="utf-8")  # noqa: SIM115
    with out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def _record(obj: djm.Model, mapping: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {**{key: _json_value(getattr(obj, name)) for key, name in mapping.items()}, **extra}


def export_config(folder: Path) -> dict[str, int]:
    counts = {}
    for filename, (model_name, mapping) in CONFIG_FIELDS.items():
        model = apps.get_model("features", model_name)
        counts[filename] = _write(folder / "config" / filename,
                                  (_record(obj, mapping) for obj in model.objects.order_by("name")))
    return counts


def export_metadata(source: Source, target: Path) -> None:
    source_set = source.source_set
    release = source_set.release
    if release is not None:
        _write(target / "release.jsonl", [_record(release, RELEASE_FIELDS)])
    _write(target / "model.jsonl", [_record(source.model, MODEL_FIELDS)])
    _write(target / "sourceset.jsonl", [_record(source_set, SOURCESET_FIELDS, modelId=source.model_id,
                                                releaseName=release.name if release else None)])
    _write(target / "source.jsonl", [_record(source, SOURCE_FIELDS, modelId=source.model_id,
                                             setName=source_set.name)])


def _batch_rows(obj_values: dict[str, Any], columns: tuple, head: dict[str, Any]) -> dict[str, Any]:
    return {**head, **{c.key: _json_value(obj_values[c.column]) for c in columns}}


def export_source(source: Source, folder: Path,
                  on_step: Callable[[Step], None] | None = None) -> dict[str, Any]:
    """Write `source` under `folder`; returns the folder, the number of files and rows per table."""
    started = time.monotonic()
    target = folder / source.model_id / source.name
    export_config(folder)
    export_metadata(source, target)
    head = {"modelId": source.model_id, "layer": source.name}
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
            _batch_rows(r, FEATURE_COLUMNS, {**head, "index": str(r["index"]),
                                             "sourceSetName": source.source_set.name}) for r in rows))
        activations = (Activation.objects.filter(feature_id__in=[r["id"] for r in rows])
                       .order_by("feature__index", "-max_value", "id").values(*act_cols).iterator(2000))
        counts["activations"] += _write(target / "activations" / f"batch-{batch}.jsonl.gz", (
            _batch_rows(r, ACTIVATION_COLUMNS, {**head, "index": str(r["feature__index"])})
            | {"id": r["external_id"] or f"np{r['id']}"} for r in activations))
        files += 2
        if on_step:
            on_step(Step(f"features+activations/batch-{batch}", len(rows), time.monotonic() - t0))
        batch += 1
    counts["explanations"], explanation_files = _export_explanations(source, target, head, on_step)
    return {"folder": str(folder), "path": str(target), "files": files + explanation_files,
            "tables": counts, "seconds": round(time.monotonic() - started, 2)}


def _export_explanations(source: Source, target: Path, head: dict[str, Any],
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
            _batch_rows(r, EXPLANATION_COLUMNS, {**head, "index": str(r["feature__index"])})
            | {"id": r["external_id"] or f"np{r['id']}"} for r in rows))
        if on_step:
            on_step(Step(f"explanations/batch-{batch}", len(rows), time.monotonic() - t0))
        batch += 1
