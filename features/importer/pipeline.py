"""Import of whole sources: plan the files, load metadata then features, activations and explanations
file by file (each its own transaction and checkpoint), then verify the counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from features.importer.errors import ImportSourceError
from features.importer.layout import BATCH_KINDS, CONFIG_FILES, batch_number
from features.importer.loader import SourceContext, is_current, load_batch_file
from features.importer.metadata import load_config_file, load_source_metadata
from features.importer.storage import HttpStore, LocalStore, RemoteFile, sha256_of
from features.importer.verify import verify_source
from features.models import ImportedFile

Store = LocalStore | HttpStore


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


def import_source(store: Store, model_id: str, source_name: str, plan: list[tuple[str, RemoteFile]], *,
                  job_id: int | None = None, force: bool = False,
                  on_step: OnStep | None = None) -> dict[str, Any]:
    """Import one source; returns its verification. Safe to re-run: unchanged files are skipped."""
    started = time.monotonic()
    source, changed = load_source_metadata(store, model_id, source_name, job_id)
    if on_step:
        on_step(Step(f"{model_id}/{source_name}/*.jsonl", 1 if changed else None,
                     time.monotonic() - started))
    if force:
        ImportedFile.objects.filter(source=source).exclude(kind="metadata").update(sha256="")
    ctx = SourceContext(source=source, base=store.base, job_id=job_id)
    imported = skipped = 0
    for kind, remote in plan:
        t0 = time.monotonic()
        with store.fetch(remote.path) as handle:
            sha, size = sha256_of(handle)
            stats = None if is_current(remote.path, sha) else load_batch_file(
                ctx, kind, remote.path, handle, sha256=sha, size=size)
        imported, skipped = (imported + 1, skipped) if stats else (imported, skipped + 1)
        if on_step:
            on_step(Step(remote.path, stats.rows_written if stats else None, time.monotonic() - t0))
    result = verify_source(source, [remote.path for _, remote in plan])
    result["files"] = {"total": len(plan), "imported": imported, "skipped": skipped}
    result["seconds"] = round(time.monotonic() - started, 2)
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
