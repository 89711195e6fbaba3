"""Import and export jobs: create the job row, enqueue on commit, and run the job body.

Every run is safe to repeat: files already imported with the same sha256 are skipped, a file's rows and
checkpoint commit together, and an export rewrites its files from the database.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from features.models import Source
from neuronpedia.jobs import registry
from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import Job, JobKind
from transfer.exporter import export_source
from transfer.importer.catalog import list_source_names
from transfer.importer.layout import DEFAULT_BASE
from transfer.importer.pipeline import OnStep, import_config, import_source, plan_source
from transfer.importer.storage import open_store


def import_base() -> str:
    """settings.NP_IMPORT_BASE: a folder or an http(s) URL; default: the public bucket."""
    return settings.NP_IMPORT_BASE or DEFAULT_BASE


def export_dir() -> Path:
    return Path(getattr(settings, "NP_DATA_DIR", ".data")) / "exports"


def start_import(*, model_id: str, sources: list[str], base: str | None = None, force: bool = False,
                 requested_by: Any = None, enqueue: bool = True) -> Job:
    """Create an import job for `sources` of `model_id`; enqueue it on the imports queue (or run it here,
    like the import_source command, with `enqueue=False` and run_job)."""
    base = base or import_base()
    title = f"Import {model_id}/{sources[0]}" + (f" and {len(sources) - 1} more" if len(sources) > 1 else "")
    with transaction.atomic():
        job = jobs.create_job(kind=JobKind.IMPORT_SOURCE, title=title, requested_by=requested_by,
                              params={"action": "source", "base": base, "model_id": model_id,
                                      "sources": sources, "force": force},
                              model_id_ref=model_id, source_ref=",".join(sources)[:256])
        if enqueue:
            registry.enqueue(job)
    return job


def start_set_import(*, model_id: str, set_name: str, base: str | None = None,
                     requested_by: Any = None) -> Job:
    base = base or import_base()
    names = list_source_names(open_store(base), model_id, set_name)
    if not names:
        raise ValueError(f"no sources of set {set_name!r} for {model_id} at {base}")
    return start_import(model_id=model_id, sources=names, base=base, requested_by=requested_by)


def start_config_import(*, base: str | None = None, requested_by: Any = None, enqueue: bool = True) -> Job:
    base = base or import_base()
    with transaction.atomic():
        job = jobs.create_job(kind=JobKind.IMPORT_SOURCE, title="Import config catalogs",
                              params={"action": "config", "base": base}, requested_by=requested_by)
        if enqueue:
            registry.enqueue(job)
    return job


def start_export(*, source: Source, folder: str | None = None, requested_by: Any = None,
                 enqueue: bool = True) -> Job:
    folder = folder or str(export_dir())
    with transaction.atomic():
        job = jobs.create_job(kind=JobKind.EXPORT_SOURCE, title=f"Export {source} to {folder}",
                              params={"source_id": source.id, "folder": folder}, requested_by=requested_by,
                              model_id_ref=source.model_id, source_ref=source.name)
        if enqueue:
            registry.enqueue(job)
    return job


def resume_job(*, job_id: int) -> bool:
    """FAILED/CANCELLED -> QUEUED and enqueue again; the import resumes from its file checkpoints."""
    with transaction.atomic():
        if not jobs.requeue_job(job_id):
            return False
        registry.enqueue(Job.objects.get(id=job_id))
    return True


def run_import_job(job_id: int, *, on_step: OnStep | None = None) -> dict[str, Any]:
    """The body of an import job (already claimed): imports, writes progress per file, returns the result."""
    params = Job.objects.get(id=job_id).params
    store = open_store(params["base"])
    if params["action"] == "config":
        return {"base": store.base, "config": import_config(store, job_id=job_id, on_step=on_step)}
    model_id, names = params["model_id"], params["sources"]
    plans = {name: plan_source(store, model_id, name) for name in names}
    total = sum(2 + len(plan) for plan in plans.values())  # metadata, the files, the swap
    done = 0
    jobs.record_progress(job_id, done=0, total=total)

    def step(item: Any) -> None:
        nonlocal done
        done += 1
        if on_step:
            on_step(item)
        jobs.record_progress(job_id, done=done)

    results = {name: import_source(store, model_id, name, plans[name], job_id=job_id,
                                   force=params.get("force", False), on_step=step) for name in names}
    jobs.record_progress(job_id, done=total)  # an unchanged source skips its files in one step
    return {"base": store.base, "ok": all(r["ok"] for r in results.values()), "sources": results}


def run_export_job(job_id: int, *, on_step: OnStep | None = None) -> dict[str, Any]:
    params = Job.objects.get(id=job_id).params
    source = Source.objects.get(id=params["source_id"])
    done = 0

    def step(item: Any) -> None:
        nonlocal done
        done += 1
        if on_step:
            on_step(item)
        jobs.record_progress(job_id, done=done)

    return export_source(source, Path(params["folder"]), on_step=step)


def run_here(job: Job, *, on_step: OnStep | None = None) -> Job:
    """Claim and run a job in this process (management commands); returns it finished. Never raises for a
    failed job: its status and error say what happened."""
    if jobs.claim_job(job.id):
        with contextlib.suppress(Exception):  # job_outcome stored the error on the job row
            run_job(job.id, on_step=on_step)
    job.refresh_from_db()
    return job


def run_job(job_id: int, *, on_step: OnStep | None = None) -> None:
    """Run a claimed import/export job to DONE; FAILED with a readable error (and the result, if any)."""
    with jobs.job_outcome(job_id):
        kind = Job.objects.values_list("kind", flat=True).get(id=job_id)
        runner = run_export_job if kind == JobKind.EXPORT_SOURCE else run_import_job
        result = runner(job_id, on_step=on_step)
        if result.get("ok", True):
            jobs.finish_job(job_id, result=result)
        else:
            jobs.fail_job(job_id, result=result,
                          error="verification failed: imported counts differ from the files (see the result)")
