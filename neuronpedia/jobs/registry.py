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

