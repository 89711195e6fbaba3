"""Celery tasks of the transfer app. They keep the names they had in the features app (features.tasks.*):
messages already queued still find them, and the router sends names starting with features.tasks.import_/
export_ to the imports queue (neuronpedia/queues.py)."""

from __future__ import annotations

from celery import shared_task

from neuronpedia.jobs import services as jobs
from transfer import services

LIMIT = 6 * 3600
IMPORT_TASK = "features.tasks.import_source_task"
EXPORT_TASK = "features.tasks.export_source_task"


@shared_task(name=IMPORT_TASK, acks_late=True, soft_time_limit=LIMIT, time_limit=LIMIT + 60)
def import_source_task(job_id: int) -> None:
    """Import sources or config catalogs from a Neuronpedia export.

    Safe to re-run: only a QUEUED job is claimed; files already imported with the same sha256 are skipped,
    and a file's rows commit together with its checkpoint, so a killed run resumes where it stopped.
    """
    if not jobs.claim_job(job_id):
        return
    services.run_job(job_id)


@shared_task(name=EXPORT_TASK, acks_late=True, soft_time_limit=LIMIT, time_limit=LIMIT + 60)
def export_source_task(job_id: int) -> None:
    """Write a source in Neuronpedia's export layout. Safe to re-run: files are rewritten whole."""
    if not jobs.claim_job(job_id):
        return
    services.run_job(job_id)
