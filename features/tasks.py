"""Celery tasks of the features app. Names start with import_/export_: they go to the imports queue."""

from __future__ import annotations

from celery import shared_task

from features import services_import
from neuronpedia.jobs import services as jobs

LIMIT = 6 * 3600


@shared_task(acks_late=True, soft_time_limit=LIMIT, time_limit=LIMIT + 60)
def import_source_task(job_id: int) -> None:
    """Import sources or config catalogs from a Neuronpedia export.

    Safe to re-run: only a QUEUED job is claimed; files already imported with the same sha256 are skipped,
    and a file's rows commit together with its checkpoint, so a killed run resumes where it stopped.
    """
    if not jobs.claim_job(job_id):
        return
    services_import.run_job(job_id)


@shared_task(acks_late=True, soft_time_limit=LIMIT, time_limit=LIMIT + 60)
def export_source_task(job_id: int) -> None:
    """Write a source in Neuronpedia's export layout. Safe to re-run: files are rewritten whole."""
    if not jobs.claim_job(job_id):
        return
    services_import.run_job(job_id)
