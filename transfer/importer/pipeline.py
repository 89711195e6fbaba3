"""Import of whole sources: plan the files, read the metadata, load features, activations and explanations
file by file into the source's staging copy (each file its own transaction and checkpoint), swap the copy
into the live source in one transaction (transfer/importer/swap.py), then verify the counts.

An unchanged source (same metadata and batch files, by sha256) is left alone: nothing is written."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from features.hnsw import IndexPlan
from features.models import ImportedFile, ImportedFileKind, ImportedFileStatus, Source
from transfer.importer.errors import ImportFileError, ImportSourceError
from transfer.importer.layout import BATCH_KINDS, CONFIG_FILES, batch_number
from transfer.importer.loader import SourceContext, is_current, load_batch_file
from transfer.importer.metadata import (
    SourceMetadata,
    load_config_file,
    metadata_current,
    read_source_metadata,
)
from transfer.importer.reader import iter_records
from transfer.importer.rows import EMBEDDER_BY_WIDTH
from transfer.importer.storage import HttpStore, LocalStore, RemoteFile, sha256_of
from transfer.importer.swap import purge, staging_source, swap_in
from transfer.importer.verify import verify_source

Store = LocalStore | HttpStore
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One unit of progress: a file imported (rows) or skipped (rows=None), for progress output."""

    path: str
    rows: int | None
    seconds: float


OnStep = Callable[[Step], None]


def plan_source(store: Store, model_id: str, source_name: str) -> list[tuple[str, RemoteFile]]:
    """The batch files of a source in import order: features, activations, explanations, by batch number."""
    folder = f"{model_id}/{source_name}"
    if not store.exists(f"{folder}/source.jsonl"):
        raise ImportSourceError(f"no source {folder} at {store.base} ({folder}/source.jsonl not found)")
    plan = []
    for kind in BATCH_KINDS:
        files = store.list_files(f"{folder}/{kind}")
        numbered = [(batch_number(f.path.rsplit("/", 1)[-1]), f) for f in files]
        plan.extend((kind, f) for n, f in sorted(numbered, key=lambda item: item[0]) if n >= 0)
    return plan


def pending_explanation_files(plan: list[tuple[str, RemoteFile]], force: bool) -> int:
    """Explanation files this import will probably load: those without a finished checkpoint of the same
    size (all of them with `force`). Decides, with a sample of the first one, the HNSW plan."""
    paths = {remote.path: remote for kind, remote in plan if kind == "explanations"}
    done = {} if force else dict(ImportedFile.objects.filter(
        path__in=list(paths), status=ImportedFileStatus.DONE).values_list("path", "size"))
    return sum(1 for path, remote in paths.items()
               if path not in done or (remote.size is not None and done[path] != remote.size))


def embedded_rows(handle: BinaryIO, path: str) -> Counter[str]:
    """Rows with an embedding per embedder in one explanation file (named, or known by its width);
    rewinds the handle. Bad rows are left to the loader, which reports them."""
    counts: Counter[str] = Counter()
    try:
        for _, record in iter_records(handle, path):
            embedding = record.get("embedding")
            if isinstance(embedding, str):  # pgvector's text form, as Neuronpedia's exporter writes it
                embedding = embedding.count(",") + 1 if embedding.strip() not in ("", "[]") else 0
                embedding = [0.0] * embedding
            if isinstance(embedding, list) and embedding:
                name = record.get("embedder") or EMBEDDER_BY_WIDTH.get(len(embedding))
                if isinstance(name, str):
                    counts[name] += 1
    except ImportFileError:
        pass
    handle.seek(0)
    return counts


def import_source(store: Store, model_id: str, source_name: str, plan: list[tuple[str, RemoteFile]], *,
                  job_id: int | None = None, force: bool = False,
                  on_step: OnStep | None = None) -> dict[str, Any]:
    """Import one source; returns its verification. Safe to re-run: unchanged files are skipped."""
    started = time.monotonic()
    indexes = IndexPlan(pending_files=pending_explanation_files(plan, force))
    indexes.start()
    try:
        result = _import_files(store, model_id, source_name, plan, indexes, job_id=job_id, force=force,
                               on_step=on_step)
    except BaseException:
        try:
            indexes.finish()
        except Exception:  # the import's own error matters more; the next import builds the index
            log.exception("could not rebuild the explanation embedding indexes")
        raise
    indexes.finish()
    if indexes.seconds:
        result["index_seconds"] = indexes.seconds
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def _unchanged(meta: SourceMetadata, store: Store, plan: list[tuple[str, RemoteFile]]) -> Source | None:
    """The live source when it was imported from exactly these files (metadata and batches, by sha256)."""
    live = Source.objects.filter(model_id=meta.model_id, name=meta.source_name).first()
    if live is None or not metadata_current(meta):
        return None
    done = set(ImportedFile.objects.filter(source=live, staged=False, status=ImportedFileStatus.DONE)
               .exclude(kind=ImportedFileKind.METADATA).values_list("path", flat=True))
    if done != {remote.path for _, remote in plan}:
        return None
    for _, remote in plan:
        with store.fetch(remote.path) as handle:
            if not is_current(remote.path, sha256_of(handle)[0]):
                return None
    return live


def _num_features(meta: SourceMetadata) -> int | None:
    record = meta.record("source.jsonl") or {}
    config = record.get("saelensConfig")
    if isinstance(record.get("num_features"), int):
        return record["num_features"]
    if isinstance(config, dict) and isinstance(config.get("d_sae"), int):
        return config["d_sae"]
    return None


def _import_files(store: Store, model_id: str, source_name: str, plan: list[tuple[str, RemoteFile]],
                  indexes: IndexPlan, *, job_id: int | None, force: bool,
                  on_step: OnStep | None) -> dict[str, Any]:
    started = time.monotonic()
    meta = read_source_metadata(store, model_id, source_name)
    live = None if force else _unchanged(meta, store, plan)
    if live is not None:
        if on_step:
            on_step(Step(f"{model_id}/{source_name} (unchanged)", None, time.monotonic() - started))
        result = verify_source(live, [remote.path for _, remote in plan])
        result["files"] = {"total": len(plan), "imported": 0, "skipped": len(plan)}
        return result
    staging = staging_source(meta, _num_features(meta))
    stale = ImportedFile.objects.filter(source=staging, staged=True).exclude(
        path__in=[remote.path for _, remote in plan])
    if force or stale.exists():
        purge(staging)
    if on_step:
        on_step(Step(f"{model_id}/{source_name}/*.jsonl", 1, time.monotonic() - started))
    ctx = SourceContext(source=staging, base=store.base, job_id=job_id)
    imported = skipped = 0
    for kind, remote in plan:
        t0 = time.monotonic()
        with store.fetch(remote.path) as handle:
            sha, size = sha256_of(handle)
            stats = None
            if not is_current(remote.path, sha, staged=True):
                if kind == "explanations" and not indexes.decided:
                    indexes.before_explanations(embedded_rows(handle, remote.path))
                stats = load_batch_file(ctx, kind, remote.path, handle, sha256=sha, size=size)
        imported, skipped = (imported + 1, skipped) if stats else (imported, skipped + 1)
        if on_step:
            on_step(Step(remote.path, stats.rows_written if stats else None, time.monotonic() - t0))
    t0 = time.monotonic()
    live = swap_in(meta, staging, base=store.base, job_id=job_id)
    if on_step:
        on_step(Step(f"{model_id}/{source_name} (staging copy swapped in)", 1,
                     time.monotonic() - t0))
    result = verify_source(live, [remote.path for _, remote in plan])
    result["files"] = {"total": len(plan), "imported": imported, "skipped": skipped}
    return result


def import_config(store: Store, *, job_id: int | None = None,
                  on_step: OnStep | None = None) -> dict[str, Any]:
    """Upsert the config catalogs found under `config/`; returns rows per file (None: unchanged/unused)."""
    present = {f.path.rsplit("/", 1)[-1] for f in store.list_files("config")}
    result: dict[str, Any] = {}
    for name in CONFIG_FILES:
        if name not in present:
            continue
        t0 = time.monotonic()
        result[name] = load_config_file(store, f"config/{name}", job_id)
        if on_step:
            on_step(Step(f"config/{name}", result[name], time.monotonic() - t0))
    return result
