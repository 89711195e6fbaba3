"""Celery entry points of autointerp (default queue)."""

from __future__ import annotations

from celery import shared_task

from neuronpedia.queues import Queue


@shared_task(queue=Queue.DEFAULT, acks_late=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60)
def autointerp_batch_task(job_id: int) -> None:
    """Run an autointerp batch job.

    Safe to re-run: only a QUEUED job is claimed, and the batch skips features already explained with
    the job's explainer + model (and scores already DONE), so a re-queued job resumes where it stopped.
    """
    from autointerp.services import run_autointerp_job  # noqa: PLC0415
    from neuronpedia.jobs.services import claim_job  # noqa: PLC0415

    if not claim_job(job_id):
        return
    run_autointerp_job(job_id)
