"""Celery entry points of autointerp (default queue)."""

from __future__ import annotations

from celery import shared_task

from autointerp.batch import run_autointerp_job
from autointerp.services import HEADLINE_SCORE, score_explanation
from features.models import Explanation
from neuronpedia.jobs.services import claim_job
from neuronpedia.queues import Queue


@shared_task(queue=Queue.DEFAULT, acks_late=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60)
def autointerp_batch_task(job_id: int) -> None:
    """Run an autointerp batch job.

    Safe to re-run: only a QUEUED job is claimed, and the batch skips features already explained with
    the job's explainer + model (and scores already DONE), so a re-queued job resumes where it stopped.
    """
    if not claim_job(job_id):
        return
    run_autointerp_job(job_id)


@shared_task(queue=Queue.DEFAULT, acks_late=True, soft_time_limit=600, time_limit=660)
def score_headline_task(explanation_id: int) -> None:
    """Compute (or recompute, when stale) the headline score of one explanation. Idempotent: a fresh DONE
    score is left alone; a failure is stored FAILED with its reason."""
    explanation = Explanation.objects.select_related("feature").filter(pk=explanation_id).first()
    if explanation is not None:
        score_explanation(explanation=explanation, score_type=HEADLINE_SCORE)
