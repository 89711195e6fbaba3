"""Writes to job rows: create, claim, progress, finish. Every function is safe to call twice."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from neuronpedia.jobs import registry
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.lib.jobs import JobStatus

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a job's loop when someone asked to cancel it."""


class JobSuperseded(JobCancelled):
    """Raised inside a job's loop when the job was re-queued (its heartbeat had stopped) and another
    run owns it now: this run stops without touching the row."""


# job id -> the generation (claim count) this process runs, set by job_outcome
_RUNNING: ContextVar[dict[int, int] | None] = ContextVar("np_running_jobs", default=None)


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
    rows = Job.objects.filter(id=job_id, status=JobStatus.RUNNING)
    generation = (_RUNNING.get() or {}).get(job_id)
    if generation is not None:
        rows = rows.filter(generation=generation)
    if not rows.update(**fields) and generation is not None and Job.objects.filter(
            id=job_id, status=JobStatus.RUNNING).exclude(generation=generation).exists():
        raise JobSuperseded(f"job {job_id} was re-queued and runs elsewhere now")
    if Job.objects.filter(id=job_id, cancel_requested=True).exists():
        raise JobCancelled(f"job {job_id} was cancelled")


def _mine(job_id: int) -> Any:
    """The job's row, restricted to the run this process owns when inside job_outcome."""
    rows = Job.objects.filter(id=job_id)
    generation = (_RUNNING.get() or {}).get(job_id)
    return rows if generation is None else rows.filter(generation=generation)


def finish_job(job_id: int, *, result: dict[str, Any] | None = None) -> None:
    _mine(job_id).filter(status=JobStatus.RUNNING).update(
        status=JobStatus.DONE, finished_at=timezone.now(), heartbeat_at=timezone.now(),
        result=result or {},
    )


def fail_job(job_id: int, *, error: str, result: dict[str, Any] | None = None) -> None:
    fields: dict[str, Any] = {"status": JobStatus.FAILED, "finished_at": timezone.now(),
                              "error": error[:10_000]}
    if result is not None:
        fields["result"] = result
    _mine(job_id).exclude(status=JobStatus.DONE).update(**fields)


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


def resume_job(job_id: int) -> bool:
    """FAILED/CANCELLED -> QUEUED and send it again (registry.enqueue, on commit); the job resumes from its
    checkpoint. False when the job is in another state or its kind cannot resume; UnknownJobKind when no
    app registered its kind. Safe to call twice: only the first call finds it FAILED/CANCELLED."""
    job = Job.objects.filter(id=job_id).first()
    if job is None or not registry.job_type(job.kind).resumable:
        return False
    with transaction.atomic():
        if not requeue_job(job_id):
            return False
        job.refresh_from_db()
        registry.enqueue(job)
    return True


def fail_stale_jobs() -> int:
    """Kept for callers of the old name: heal stale jobs, return how many were failed or re-queued."""
    healed = heal_stale_jobs()
    return healed["requeued"] + healed["failed"]


def heal_stale_jobs() -> dict[str, int]:
    """RUNNING jobs whose heartbeat stopped (their worker died) are re-queued, to resume from their
    checkpoint, while their kind is registered as resumable and they have been claimed fewer than
    settings.JOB_MAX_ATTEMPTS times; past that (or for kinds that cannot resume) they are FAILED with a
    readable reason. Safe to run anywhere, any number of times: every change is a conditional update."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    counts = {"requeued": 0, "failed": 0}
    limit = settings.JOB_MAX_ATTEMPTS
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff):
        kind = registry.registered().get(job.kind)
        rows = Job.objects.filter(id=job.id, status=JobStatus.RUNNING, heartbeat_at__lt=cutoff,
                                  generation=job.generation)
        if kind is not None and kind.resumable and job.generation < limit:
            note = (f"the worker stopped sending heartbeats (killed or crashed); re-queued automatically "
                    f"(attempt {job.generation + 1} of {limit})")
            if rows.update(status=JobStatus.QUEUED, error=note, heartbeat_at=now):
                job.refresh_from_db()
                try:
                    kind.send(job)
                except Exception as exc:  # the broker is down: fail it, a person can resume it later
                    fail_job(job.id, error=f"{note}, but sending it failed: {type(exc).__name__}: {exc}")
                    counts["failed"] += 1
                    continue
                log.warning("job %s (%s): %s", job.id, job.kind, note)
                counts["requeued"] += 1
            continue
        why = (f"after {job.generation} attempts" if kind is not None and kind.resumable
               else "and this kind of job cannot resume by itself")
        error = f"the worker stopped sending heartbeats (killed or crashed) {why}; re-queue to resume"
        if rows.update(status=JobStatus.FAILED, finished_at=now, error=error):
            log.warning("job %s (%s): %s", job.id, job.kind, error)
            counts["failed"] += 1
    return counts


def _heartbeat(job_id: int, generation: int, stop: threading.Event) -> None:
    """Touch the job's heartbeat while its body runs, even through one long step (a graph's attribution,
    a model load): the sweeper then tells a slow job from a dead worker."""
    while not stop.wait(settings.JOB_HEARTBEAT_SECONDS):
        try:
            Job.objects.filter(id=job_id, status=JobStatus.RUNNING, generation=generation).update(
                heartbeat_at=timezone.now())
        except Exception:  # noqa: BLE001 - a database hiccup: the next beat tries again
            log.debug("heartbeat of job %s failed", job_id, exc_info=True)
        finally:
            connection.close()  # no idle connection held between beats


@contextmanager
def job_outcome(job_id: int) -> Iterator[None]:
    """Wrap a job body: heartbeats every settings.JOB_HEARTBEAT_SECONDS while it runs; a cancel ends
    CANCELLED, an exception ends FAILED with its message; a run superseded by a re-queue stops quietly."""
    generation = Job.objects.filter(id=job_id).values_list("generation", flat=True).first() or 0
    running = dict(_RUNNING.get() or {})
    running[job_id] = generation
    token = _RUNNING.set(running)
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(job_id, generation, stop), daemon=True,
                     name=f"job-{job_id}-heartbeat").start()
    try:
        yield
    except JobSuperseded as exc:
        log.warning("%s", exc)
    except JobCancelled:
        mark_cancelled(job_id)
    except Exception as exc:
        fail_job(job_id, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        stop.set()  # not joined: a beat blocked on this job's row lock must not hold the job's thread
        _RUNNING.reset(token)


def follow_job(job_id: int, write: Callable[[str], Any], *, interval: float = 1.0) -> Job:
    """Poll a job until it ends, writing "STATUS done/total [message]" whenever that line changes (the
    `--wait` of management commands). Returns the finished job; the caller judges its status."""
    last = None
    while True:
        job = Job.objects.get(id=job_id)
        line = f"{job.status} {job.done}/{job.total or '?'} {job.checkpoint.get('message', '')}".rstrip()
        if line != last:
            write(line)
            last = line
        if job.is_finished:
            return job
        time.sleep(interval)

