"""One way to put a job on its queue, whatever its kind.

Each app registers its job kinds when Django starts (in its AppConfig.ready): how to send a job's message
to the queue its worker consumes, and whether a stopped job can resume from its checkpoint. Then

    jobs.registry.enqueue(job)      # after the transaction that created the row commits
    jobs.registry.requeue(job_id)   # FAILED/CANCELLED (or a dead worker's RUNNING) -> QUEUED, sent again

replace the per-app copies, and the stale-job sweeper can re-queue any registered kind by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from neuronpedia.jobs.models import Job

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
    """Send the job's message once the current transaction commits (at once outside one)."""
    send = job_type(job.kind).send
    transaction.on_commit(lambda: send(job))


def requeue(job_id: int) -> bool:
    """FAILED/CANCELLED -> QUEUED and send again; the job resumes from its checkpoint.
    False when the job is in another state or its kind cannot resume."""
    from neuronpedia.jobs.services import requeue_job  # noqa: PLC0415 - services imports this module

    job = Job.objects.filter(id=job_id).first()
    if job is None or not job_type(job.kind).resumable:
        return False
    with transaction.atomic():
        if not requeue_job(job_id):
            return False
        job.refresh_from_db()
        enqueue(job)
    return True
