from __future__ import annotations

import time

from celery import shared_task

from neuronpedia.jobs import services


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def noop_job_task(job_id: int, steps: int = 3, delay: float = 0.0) -> None:
    """Health-check job that walks through the job lifecycle.

    Safe to re-run: only a QUEUED job can be claimed, so a redelivered message does nothing.
    """
    if not services.claim_job(job_id):
        return
    with services.job_outcome(job_id):
        for step in range(1, steps + 1):
            time.sleep(delay)
            services.record_progress(job_id, done=step, total=steps)
        services.finish_job(job_id, result={"steps": steps})


@shared_task(acks_late=False, ignore_result=True)
def heal_stale_jobs_task() -> dict[str, int]:
    """The sweeper Celery beat runs: re-queue (or fail) RUNNING jobs whose heartbeat stopped. Safe to
    re-run and to run on several workers at once: only conditional updates."""
    return services.heal_stale_jobs()


fail_stale_jobs_task = heal_stale_jobs_task  # the old name
