"""One way to put a job on its queue, whatever its kind.

Each app registers its job kinds when Django starts (in its AppConfig.ready): how to send a job's message
to the queue its worker consumes, and whether a stopped job can resume from its checkpoint. Then

    jobs.registry.enqueue(job)          # after the transaction that created the row commits
    jobs.services.resume_job(job_id)    # FAILED/CANCELLED -> QUEUED, sent again

replace the per-app copies, and the stale-job sweeper (jobs.services.heal_stale_jobs) can re-queue any
registered kind by itself. This module holds the registered kinds and reads them; it imports no other module
of the jobs app but its models (services imports it, not the reverse).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from neuronpedia.jobs.models import Job
from neuronpedia.lib.jobs import JobStatus

log = logging.getLogger(__name__)

Send = Callable[[Job], None]


@dataclass(frozen=True)
class JobType:
    kind: str
    send: Send
    resumable: bool = True  # a re-run continues from the job's checkpoint (or is harmless to repeat)


_TYPES: dict[str, JobType] = {}


class UnknownJobKind(LookupError):
    pass


def register(kind: str, send: Send, *, resumable: bool = True) -> None:
    """Register (or replace, e.g. on autoreload) how jobs of `kind` reach their worker."""
    _TYPES[str(kind)] = JobType(str(kind), send, resumable)


def job_type(kind: str) -> JobType:
    try:
        return _TYPES[str(kind)]
    except KeyError:
        raise UnknownJobKind(f"no job type registered for kind {kind!r}") from None


def registered() -> dict[str, JobType]:
    return dict(_TYPES)


def enqueue(job: Job) -> None:
    """Send the job's message once the current transaction commits (at once outside one). When the message
    cannot be sent (the broker, Redis, is down) the job is FAILED with the reason -- nothing ran, *Resume*
    sends it again -- and the request that started it still gets its answer instead of a server error."""
    send = job_type(job.kind).send
    transaction.on_commit(lambda: _send_or_fail(job, send))


def _send_or_fail(job: Job, send: Send) -> None:
    try:
        send(job)
    except Exception as exc:  # noqa: BLE001 - kombu/redis connection errors, whatever the transport raises
        error = (f"could not send the job to its queue ({type(exc).__name__}: {exc}); nothing ran. "
                 f"Resume it once the queue (Redis) is reachable again.")
        log.warning("job %s (%s): %s", job.id, job.kind, error)
        Job.objects.filter(id=job.id, status=JobStatus.QUEUED).update(
            status=JobStatus.FAILED, finished_at=timezone.now(), error=error[:10_000])

