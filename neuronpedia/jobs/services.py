"""Writes to job rows: create, claim, progress, finish. Every function is safe to call twice."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.lib.jobs import JobStatus


class JobCancelled(Exception):
    """Raised inside a job's loop when someone asked to cancel it."""


def create_job(*, kind: JobKind, title: str = "", params: dict[str, Any] | None = None,
               total: int | None = None, requested_by: Any = None, model_id_ref: str = "",
               source_ref: str = "") -> Job:
    return Job.objects.create(kind=kind, title=title, params=params or {}, total=total,
                              requested_by=requested_by, model_id_ref=model_id_ref,
                              source_ref=source_ref)


def claim_job(job_id: int) -> bool:
    """QUEUED -> RUNNING only if still QUEUED; False means another worker owns it or it finished."""
    now = timezone.now()
    return Job.objects.filter(id=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, error="",
        generation=F("generation") + 1,
    ) == 1


def record_progress(job_id: int, *, done: int, total: int | None = None,
                    checkpoint: dict[str, Any] | None = None) -> None:
    """Store progress and a heartbeat; raise JobCancelled when a cancel was requested."""
    fields: dict[str, Any] = {"done": done, "heartbeat_at": timezone.now()}
    if total is not None:
        fields["total"] = total
    if checkpoint is not None:
        fields["checkpoint"] = checkpoint
    Job.objects.filter(id=job_id, status=JobStatus.RUNNING).update(**fields)
    if Job.objects.filter(id=job_id, cancel_requested=True).exists():
        raise JobCancelled(f"job {job_id} was cancelled")


def finish_job(job_id: int, *, result: dict[str, Any] | None = None) -> None:
    Job.objects.filter(id=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.DONE, finished_at=timezone.now(), heartbeat_at=timezone.now(),
        result=result or {},
    )


def fail_job(job_id: int, *, error: str, result: dict[str, Any] | None = None) -> None:
    fields: dict[str, Any] = {"status": JobStatus.FAILED, "finished_at": timezone.now(),
                              "error": error[:10_000]}
    if result is not None:
        fields["result"] = result
    Job.objects.filter(id=job_id).exclude(status=JobStatus.DONE).update(**fields)


def cancel_job(job_id: int) -> None:
    """A queued job is cancelled at once; a running one stops at its next progress write."""
    with transaction.atomic():
        Job.objects.filter(id=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), cancel_requested=True)
        Job.objects.filter(id=job_id, status=JobStatus.RUNNING).update(cancel_requested=True)


def mark_cancelled(job_id: int) -> None:
    Job.objects.filter(id=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now())


def requeue_job(job_id: int) -> bool:
    """FAILED/CANCELLED -> QUEUED so the same job resumes from its checkpoint."""
    return Job.objects.filter(
        id=job_id, status__in=[JobStatus.FAILED, JobStatus.CANCELLED]
    ).update(status=JobStatus.QUEUED, cancel_requested=False, error="", finished_at=None) == 1


def fail_stale_jobs() -> int:
    """RUNNING jobs whose heartbeat stopped are marked FAILED (the worker died); returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    return Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).update(
        status=JobStatus.FAILED, finished_at=timezone.now(),
        error="the worker stopped sending heartbeats (killed or crashed); re-queue to resume",
    )


@contextmanager
def job_outcome(job_id: int) -> Iterator[None]:
    """Wrap a job body: a cancel ends CANCELLED, an exception ends FAILED with its message."""
    try:
        yield
    except JobCancelled:
        mark_cancelled(job_id)
    except Exception as exc:
        fail_job(job_id, error=f"{type(exc).__name__}: {exc}")
        raise
