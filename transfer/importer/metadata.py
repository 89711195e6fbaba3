"""Metadata (release/model/sourceset/source rows, inference hosts) and config catalogs: small files,
upserted with the ORM, each original row kept whole in UpstreamRecord (for a lossless export).

A source's metadata files are read and validated before anything is written (`read_source_metadata`) and
applied inside the swap transaction (`apply_metadata`), so a bad file changes nothing. Unlike Neuronpedia's
"create if absent", a changed upstream row refreshes ours (checkpointed by sha256).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models as djm
from django.db import transaction

from features.models import (
    ImportedFile,
    ImportedFileKind,
    ImportedFileStatus,
    InferenceHostSource,
    Model,
    Source,
    SourceRelease,
    SourceSet,
    UpstreamRecord,
    parse_source_id,
)
from transfer.importer.errors import ImportFileError
from transfer.importer.layout import (
    CONFIG_FIELDS,
    HOST_FILES,
    METADATA_FILES,
    MODEL_FIELDS,
    RELEASE_FIELDS,
    SOURCE_FIELDS,
    SOURCESET_FIELDS,
    UPSTREAM_TABLES,
)
from transfer.importer.loader import is_current, lock_path, record_failure
from transfer.importer.reader import iter_records
from transfer.importer.storage import HttpStore, LocalStore, sha256_of


def _defaults(record: dict[str, Any], mapping: dict[str, str], model: type[djm.Model], path: str,
              required: tuple[str, ...] = (), line: int = 1) -> dict[str, Any]:
    for key in required:
        if record.get(key) in (None, ""):
            raise ImportFileError(path, f"missing required key '{key}'", line)
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
            raise ImportFileError(path, f"key '{key}' must be true or false, got {value!r}", line)
        if isinstance(model_field, djm.IntegerField) and (type(value) is not int):
            raise ImportFileError(path, f"key '{key}' must be an integer, got {value!r}", line)
        if isinstance(model_field, djm.CharField | djm.TextField) and not isinstance(value, str):
            raise ImportFileError(path, f"key '{key}' must be a string, got {value!r}", line)
        out[name] = value
    return out


@dataclass
class MetadataFile:
    path: str
    sha256: str = ""
    size: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    present: bool = False

    @property
    def record(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None


@dataclass
class SourceMetadata:
    """The metadata files of one source, read and validated, not yet applied."""

    folder: str
    model_id: str
    source_name: str
    files: dict[str, MetadataFile]

    def record(self, name: str) -> dict[str, Any] | None:
        return self.files[name].record


def _read_all(store: LocalStore | HttpStore, path: str) -> MetadataFile:
    if not store.exists(path):
        return MetadataFile(path)
    with store.fetch(path) as handle:
        sha, size = sha256_of(handle)
        return MetadataFile(path, sha, size, [record for _, record in iter_records(handle, path)], True)


def read_source_metadata(store: LocalStore | HttpStore, model_id: str, source_name: str) -> SourceMetadata:
    """Read and check release/model/sourceset/source.jsonl and the inference host files (nothing is
    written); raises ImportFileError naming the file and line."""
    folder = f"{model_id}/{source_name}"
    files = {name: _read_all(store, f"{folder}/{name}") for name in (*METADATA_FILES, *HOST_FILES)}
    for required in ("model.jsonl", "source.jsonl"):
        if not files[required].rows:
            why = "the file is empty" if files[required].present else f"not found at {store.base}"
            raise ImportFileError(f"{folder}/{required}", why)
    meta = SourceMetadata(folder, model_id, source_name, files)
    _validate(meta)
    return meta


def _validate(meta: SourceMetadata) -> None:
    folder = meta.folder
    if meta.record("release.jsonl"):
        _defaults(meta.record("release.jsonl"), RELEASE_FIELDS, SourceRelease, f"{folder}/release.jsonl",
                  ("name",))
    model = meta.record("model.jsonl") or {}
    _defaults(model, MODEL_FIELDS, Model, f"{folder}/model.jsonl", ("id", "layers"))
    if model["id"] != meta.model_id:
        raise ImportFileError(f"{folder}/model.jsonl",
                              f"'id' is {model['id']!r}, expected {meta.model_id!r}", 1)
    try:
        parse_source_id(meta.source_name)
    except ValueError as exc:
        raise ImportFileError(f"{folder}/source.jsonl", str(exc)) from None
    if meta.record("sourceset.jsonl"):
        _defaults(meta.record("sourceset.jsonl"), SOURCESET_FIELDS, SourceSet, f"{folder}/sourceset.jsonl",
                  ("name",))
    source = meta.record("source.jsonl") or {}
    _defaults(source, SOURCE_FIELDS, Source, f"{folder}/source.jsonl", ("id",))
    if source["id"] != meta.source_name:
        raise ImportFileError(f"{folder}/source.jsonl",
                              f"'id' is {source['id']!r}, expected {meta.source_name!r}", 1)
    hosts = meta.files["inference_hosts.jsonl"]
    for line, row in enumerate(hosts.rows, 1):
        for key in ("id", "name", "modelId"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise ImportFileError(hosts.path, f"missing required key '{key}'", line)
    known = {row["id"] for row in hosts.rows}
    links = meta.files["inference_hosts_on_source.jsonl"]
    for line, row in enumerate(links.rows, 1):
        if row.get("sourceId") != meta.source_name or row.get("sourceModelId") != meta.model_id:
            where = f"{row.get('sourceModelId')}/{row.get('sourceId')}"
            raise ImportFileError(links.path, f"the row is for {where}, not {meta.folder}", line)
        host = row.get("inferenceHostId")
        if host not in known and not InferenceHostSource.objects.filter(id=host).exists():
            raise ImportFileError(links.path, f"inference host {host!r} is in neither inference_hosts.jsonl "
                                              "nor this database", line)


def metadata_current(meta: SourceMetadata) -> bool:
    return all(is_current(f.path, f.sha256) for f in meta.files.values() if f.present)


def keep_upstream(table: str, key: str, record: dict[str, Any]) -> None:
    UpstreamRecord.objects.update_or_create(table=table, key=key, defaults={"record": record})


def ensure_parents(meta: SourceMetadata) -> SourceSet:
    """The model and source set a staging copy hangs from: created from the files when absent (an existing
    one is left as it is until the swap)."""
    set_name = parse_source_id(meta.source_name).set_name
    existing = SourceSet.objects.filter(model_id=meta.model_id, name=set_name).first()
    if existing:
        return existing
    with transaction.atomic():
        if not Model.objects.filter(id=meta.model_id).exists():
            _upsert_model(meta)
        return _upsert_set(meta, Model.objects.get(id=meta.model_id), _upsert_release(meta))


def _upsert_release(meta: SourceMetadata) -> SourceRelease | None:
    record = meta.record("release.jsonl")
    if not record:
        return None
    values = _defaults(record, RELEASE_FIELDS, SourceRelease, f"{meta.folder}/release.jsonl", ("name",))
    release, _ = SourceRelease.objects.update_or_create(name=values.pop("name"), defaults=values)
    keep_upstream("SourceRelease", release.name, record)
    return release


def _upsert_model(meta: SourceMetadata) -> Model:
    record = meta.record("model.jsonl") or {}
    values = _defaults(record, MODEL_FIELDS, Model, f"{meta.folder}/model.jsonl", ("id", "layers"))
    values.pop("id")
    model, _ = Model.objects.update_or_create(id=meta.model_id, defaults=values)
    keep_upstream("Model", model.id, record)
    return model


def _upsert_set(meta: SourceMetadata, model: Model, release: SourceRelease | None) -> SourceSet:
    set_record = meta.record("sourceset.jsonl") or {"name": parse_source_id(meta.source_name).set_name}
    values = _defaults(set_record, SOURCESET_FIELDS, SourceSet, f"{meta.folder}/sourceset.jsonl", ("name",))
    if release is None and set_record.get("releaseName"):
        release, _ = SourceRelease.objects.get_or_create(name=set_record["releaseName"])
    source_set, _ = SourceSet.objects.update_or_create(
        model=model, name=values.pop("name"), defaults={**values, "release": release})
    if meta.record("sourceset.jsonl"):
        keep_upstream("SourceSet", f"{model.id}/{source_set.name}", set_record)
    return source_set


def apply_metadata(meta: SourceMetadata, *, base: str, job_id: int | None) -> Source:
    """Upsert release, model, source set, source and inference hosts; checkpoint the files. Runs in the
    caller's (swap) transaction."""
    lock_path(f"{meta.folder}/source.jsonl")
    release = _upsert_release(meta)
    model = _upsert_model(meta)
    source_set = _upsert_set(meta, model, release)
    record = meta.record("source.jsonl") or {}
    values = _defaults(record, SOURCE_FIELDS, Source, f"{meta.folder}/source.jsonl", ("id",))
    values.pop("name")
    config = values.get("saelens_config")
    config = config if isinstance(config, dict) else {}
    if values.get("num_features") is None and isinstance(config.get("d_sae"), int):
        values["num_features"] = config["d_sae"]
    if not values.get("hook_name") and isinstance(config.get("hook_name"), str):
        values["hook_name"] = config["hook_name"]
    source, _ = Source.objects.update_or_create(
        model=model, name=meta.source_name,
        defaults={**values, "source_set": source_set, "layer": parse_source_id(meta.source_name).layer})
    keep_upstream("Source", f"{model.id}/{source.name}", record)
    _apply_hosts(meta, source)
    for name, item in meta.files.items():
        if item.present:
            ImportedFile.objects.update_or_create(path=item.path, staged=False, defaults={
                "kind": ImportedFileKind.METADATA, "source": source, "base": base,
                "status": ImportedFileStatus.DONE, "size": item.size, "sha256": item.sha256,
                "rows_read": len(item.rows), "rows_written": len(item.rows), "error": "", "job_id": job_id})
        elif name in HOST_FILES:
            ImportedFile.objects.filter(path=item.path, staged=False).delete()
    return source


def _apply_hosts(meta: SourceMetadata, source: Source) -> None:
    for row in meta.files["inference_hosts.jsonl"].rows:
        InferenceHostSource.objects.update_or_create(id=row["id"], defaults={
            "name": row["name"], "host_url": row.get("hostUrl") or "",
            "engine": row.get("engine") or "TRANSFORMER_LENS", "model_id": row["modelId"],
            "runpod_serverless_url": row.get("runpodServerlessUrl")})
        keep_upstream("InferenceHostSource", row["id"], row)
    if meta.files["inference_hosts_on_source.jsonl"].present:
        ids = [row["inferenceHostId"] for row in meta.files["inference_hosts_on_source.jsonl"].rows]
        source.upstream_inference_hosts.set(InferenceHostSource.objects.filter(id__in=ids))


def load_config_file(store: LocalStore | HttpStore, path: str, job_id: int | None = None) -> int | None:
    """Upsert one catalog file (`config/explanation_type.jsonl`...); None when unchanged or unknown."""
    name = path.rsplit("/", 1)[-1]
    if name not in CONFIG_FIELDS:
        return None
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
                    values = _defaults(record, mapping, model, path, line=line)
                    obj, _ = model.objects.update_or_create(name=values.pop("name"), defaults=values)
                    keep_upstream(UPSTREAM_TABLES[name], obj.pk, record)
                    count += 1
                ImportedFile.objects.update_or_create(path=path, staged=False, defaults={
                    "kind": ImportedFileKind.CONFIG, "source": None, "base": store.base,
                    "status": ImportedFileStatus.DONE, "size": size, "sha256": sha, "rows_read": count,
                    "rows_written": count, "error": "", "job_id": job_id})
        except ImportFileError as exc:
            record_failure(path=path, kind=ImportedFileKind.CONFIG, source=None, base=store.base,
                           job_id=job_id, error=str(exc), staged=False)
            raise
    return count
