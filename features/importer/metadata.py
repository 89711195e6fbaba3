"""Metadata (release/model/sourceset/source rows) and config catalogs: small files, upserted with the ORM.

Unlike Neuronpedia's "create if absent", a changed upstream row refreshes ours (checkpointed by sha256).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models as djm
from django.db import transaction

from features.importer.errors import ImportFileError
from features.importer.layout import (
    CONFIG_FIELDS,
    MODEL_FIELDS,
    RELEASE_FIELDS,
    SOURCE_FIELDS,
    SOURCESET_FIELDS,
)
from features.importer.loader import is_current, lock_path, record_failure
from features.importer.reader import iter_records, read_single
from features.importer.storage import HttpStore, LocalStore, sha256_of
from features.models import (
    ImportedFile,
    ImportedFileKind,
    ImportedFileStatus,
    Model,
    Source,
    SourceRelease,
    SourceSet,
    parse_source_id,
)


def _defaults(record: dict[str, Any], mapping: dict[str, str], model: type[djm.Model], path: str,
              required: tuple[str, ...] = ()) -> dict[str, Any]:
    for key in required:
        if record.get(key) in (None, ""):
            raise ImportFileError(path, f"missing required key '{key}'", 1)
    out: dict[str, Any] = {}
    for key, name in mapping.items():
        if key not in record:
            continue
        value, model_field = record[key], model._meta.get_field(name)
        if value is None:
            if model_field.null:
                out[name] = None
            elif isinstance(model_field, djm.CharField | djm.TextField):
                out[name] = ""
            continue
        if isinstance(model_field, djm.BooleanField) and not isinstance(value, bool):
            raise ImportFileError(path, f"key '{key}' must be true or false, got {value!r}", 1)
        if isinstance(model_field, djm.IntegerField) and not isinstance(value, int):
            raise ImportFileError(path, f"key '{key}' must be an integer, got {value!r}", 1)
        out[name] = value
    return out


def _read(store: LocalStore | HttpStore, path: str) -> tuple[dict[str, Any] | None, str, int]:
    if not store.exists(path):
        return None, "", 0
    with store.fetch(path) as handle:
        sha, size = sha256_of(handle)
        return read_single(handle, path), sha, size


def load_source_metadata(store: LocalStore | HttpStore, model_id: str, source_name: str,
                         job_id: int | None = None) -> tuple[Source, bool]:
    """Upsert release, model, source set and source; returns (source, changed)."""
    folder = f"{model_id}/{source_name}"
    files = {name: _read(store, f"{folder}/{name}") for name in
             ("release.jsonl", "model.jsonl", "sourceset.jsonl", "source.jsonl")}
    for required in ("model.jsonl", "source.jsonl"):
        if files[required][0] is None:
            raise ImportFileError(f"{folder}/{required}", f"not found at {store.base}")
    existing = Source.objects.filter(model_id=model_id, name=source_name).first()
    if existing and all(is_current(f"{folder}/{n}", sha) for n, (rec, sha, _) in files.items() if rec):
        return existing, False
    try:
        with transaction.atomic():
            lock_path(f"{folder}/source.jsonl")
            source = _upsert_catalog(folder, {n: rec for n, (rec, _, _) in files.items()}, model_id,
                                     source_name)
            for name, (record, sha, size) in files.items():
                if record is not None:
                    ImportedFile.objects.update_or_create(path=f"{folder}/{name}", defaults={
                        "kind": ImportedFileKind.METADATA, "source": source, "base": store.base,
                        "status": ImportedFileStatus.DONE, "size": size, "sha256": sha, "rows_read": 1,
                        "rows_written": 1, "error": "", "job_id": job_id})
    except ImportFileError as exc:
        record_failure(path=exc.path, kind=ImportedFileKind.METADATA, source=existing, base=store.base,
                       job_id=job_id, error=str(exc))
        raise
    return source, True


def _upsert_catalog(folder: str, records: dict[str, dict[str, Any] | None], model_id: str,
                    source_name: str) -> Source:
    release = None
    if records["release.jsonl"]:
        path = f"{folder}/release.jsonl"
        values = _defaults(records["release.jsonl"], RELEASE_FIELDS, SourceRelease, path, ("name",))
        release, _ = SourceRelease.objects.update_or_create(name=values.pop("name"), defaults=values)
    path = f"{folder}/model.jsonl"
    values = _defaults(records["model.jsonl"] or {}, MODEL_FIELDS, Model, path, ("id", "layers", "dimension"))
    if values.pop("id") != model_id:
        raise ImportFileError(path, f"'id' is {records['model.jsonl']['id']!r}, expected {model_id!r}", 1)
    model, _ = Model.objects.update_or_create(id=model_id, defaults=values)
    try:
        parsed = parse_source_id(source_name)
    except ValueError as exc:
        raise ImportFileError(f"{folder}/source.jsonl", str(exc)) from None
    set_record = records["sourceset.jsonl"] or {"name": parsed.set_name}
    values = _defaults(set_record, SOURCESET_FIELDS, SourceSet, f"{folder}/sourceset.jsonl", ("name",))
    if release is None and set_record.get("releaseName"):
        release, _ = SourceRelease.objects.get_or_create(name=set_record["releaseName"])
    source_set, _ = SourceSet.objects.update_or_create(
        model=model, name=values.pop("name"), defaults={**values, "release": release})
    path = f"{folder}/source.jsonl"
    record = records["source.jsonl"] or {}
    values = _defaults(record, SOURCE_FIELDS, Source, path, ("id",))
    if values.pop("name") != source_name:
        raise ImportFileError(path, f"'id' is {record['id']!r}, expected {source_name!r}", 1)
    config = values.get("saelens_config") or {}
    if values.get("num_features") is None and isinstance(config.get("d_sae"), int):
        values["num_features"] = config["d_sae"]
    if not values.get("hook_name") and isinstance(config.get("hook_name"), str):
        values["hook_name"] = config["hook_name"]
    source, _ = Source.objects.update_or_create(
        model=model, name=source_name,
        defaults={**values, "source_set": source_set, "layer": parsed.layer})
    return source


def load_config_file(store: LocalStore | HttpStore, path: str, job_id: int | None = None) -> int | None:
    """Upsert one catalog file (`config/explanation_type.jsonl`...); None when unchanged or unknown."""
    name = path.rsplit("/", 1)[-1]
    if name not in CONFIG_FIELDS:
        return None  # eval_type.jsonl and future catalogs have no table here
    model_name, mapping = CONFIG_FIELDS[name]
    model = apps.get_model("features", model_name)
    with store.fetch(path) as handle:
        sha, size = sha256_of(handle)
        if is_current(path, sha):
            return None
        try:
            with transaction.atomic():
                lock_path(path)
                count = 0
                for line, record in iter_records(handle, path):
                    if not isinstance(record.get("name"), str) or not record["name"]:
                        raise ImportFileError(path, "missing required key 'name'", line)
                    values = _defaults(record, mapping, model, path)
                    model.objects.update_or_create(name=values.pop("name"), defaults=values)
                    count += 1
                ImportedFile.objects.update_or_create(path=path, defaults={
                    "kind": ImportedFileKind.CONFIG, "source": None, "base": store.base,
                    "status": ImportedFileStatus.DONE, "size": size, "sha256": sha, "rows_read": count,
                    "rows_written": count, "error": "", "job_id": job_id})
        except ImportFileError as exc:
            record_failure(path=path, kind=ImportedFileKind.CONFIG, source=None, base=store.base,
                           job_id=job_id, error=str(exc))
            raise
    return count
