"""Cross-source similar features as a tracked job (kind `compute_similar`, issue 18).

Started from the model page or the feature page's similar card (staff) or `manage.py
compute_similar_features`; a worker of the default (CPU) queue runs it: the decoders come from the catalog
(source folders' safetensors, or stored vectors: features/similar.py), so no inference worker is involved.
The job writes its progress after every chunk of rows and a checkpoint after every source; resuming it (by
hand from the job page, or by the stale-job sweeper after a killed worker) skips the sources the checkpoint
lists as done, and a source cut off mid-way is computed again (its rows are upserted, never duplicated).
torch is imported by the job body only, so importing this module (web process, AppConfig.ready) stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from celery import shared_task
from django.db import transaction

from features.models import CrossSourceSimilarity
from neuronpedia.jobs import registry
from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.lib.jobs import JobStatus
from neuronpedia.queues import Queue

if TYPE_CHECKING:
    from features.similar import SimilarPlan

TASK_NAME = "features.similar_jobs.compute_similar_task"
LIMIT = 6 * 3600
MAX_TOP_K = 100
Log = Callable[[str], Any]


@dataclass(frozen=True)
class SimilarParams:
    sources: tuple[str, ...] = ()  # the sources whose rows are computed; empty: every one with weights
    top_k: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise ValueError(f"top-k must be between 1 and {MAX_TOP_K}, not {self.top_k}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimilarParams:
        return cls(sources=tuple(data.get("sources") or ()), top_k=int(data.get("top_k", 10)))

    def to_dict(self) -> dict[str, Any]:
        return {"sources": list(self.sources), "top_k": self.top_k}


def start_similar_job(*, model_id: str, params: SimilarParams | None = None, requested_by: Any = None,
                      enqueue: bool = True) -> Job:
    """Create a COMPUTE_SIMILAR job for `model_id` and send it to the default queue once the transaction
    commits. A queued or running job of the same model and parameters is returned instead of a second one.
    `enqueue=False` creates a job and leaves it QUEUED for an in-process run (the command's --inline)."""
    params = params or SimilarParams()
    with transaction.atomic():
        active = Job.objects.filter(kind=JobKind.COMPUTE_SIMILAR, model_id_ref=model_id,
                                    params=params.to_dict(),
                                    status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        if enqueue and (job := active.order_by("created_at").first()) is not None:
            return job
        scope = ", ".join(params.sources) or "all sources"
        job = jobs.create_job(kind=JobKind.COMPUTE_SIMILAR, params=params.to_dict(),
                              title=f"Similar features across the sources of {model_id} ({scope})",
                              requested_by=requested_by, model_id_ref=model_id)
        if enqueue:
            registry.enqueue(job)
    return job


def send_similar_job(job: Job) -> None:
    """How the registry puts a job of this kind on its queue (first run, resume, sweeper's re-queue)."""
    compute_similar_task.delay(job.id)


@shared_task(name=TASK_NAME, queue=Queue.DEFAULT, acks_late=True, soft_time_limit=LIMIT,
             time_limit=LIMIT + 60)
def compute_similar_task(job_id: int) -> None:
    """Compute a model's cross-source similar features.

    Safe to re-run: only a QUEUED job is claimed (a redelivered message does nothing), sources the checkpoint
    lists as done are skipped, and rows are upserted on (feature, other source).
    """
    if not jobs.claim_job(job_id):
        return
    run_similar_job(job_id)


def run_similar_job(job_id: int, *, log: Log | None = None) -> None:
    """The body of a claimed (RUNNING) job: compute each planned source not yet in the checkpoint. Ends
    DONE with a summary, FAILED with the reason when there is nothing to compare (e.g. fewer than two
    sources with decoder weights), CANCELLED when asked at the next chunk."""
    from features import similar  # noqa: PLC0415 - torch: loaded by the process that runs a job, not on import

    job = Job.objects.get(id=job_id)
    params = SimilarParams.from_dict(job.params)
    with jobs.job_outcome(job_id):
        try:
            plan = similar.plan_similar(model_id=job.model_id_ref, source_names=list(params.sources) or None)
        except similar.NothingToCompare as exc:
            jobs.fail_job(job_id, error=str(exc))
            return
        progress = _Progress(job_id=job_id, plan=plan, log=log,
                             sources_done=list((job.checkpoint or {}).get("sources_done", [])))
        resumed_after = len(progress.sources_done)
        progress.save(f"resuming after {resumed_after} sources" if resumed_after else "loaded the decoders")
        for decoder in plan.wanted:
            if decoder.source.name in progress.sources_done:
                continue
            similar.compute_source(plan, decoder, top_k=params.top_k, on_chunk=progress.chunk)
            progress.sources_done.append(decoder.source.name)
            progress.save(f"{decoder.source.name}: done")
        jobs.finish_job(job_id, result=_summary(plan, params, resumed_after))


@dataclass
class _Progress:
    """Progress of one run: a unit per chunk of a source's rows against one partner; the checkpoint holds
    the sources whose rows are complete."""

    job_id: int
    plan: SimilarPlan
    log: Log | None
    sources_done: list[str] = field(default_factory=list)
    done: int = 0

    def __post_init__(self) -> None:
        self.done = sum(self.plan.steps(d) for d in self.plan.wanted if d.source.name in self.sources_done)

    def chunk(self, message: str) -> None:
        self.done += 1
        self.save(message)

    def save(self, message: str) -> None:
        jobs.record_progress(self.job_id, done=self.done, total=self.plan.total,
                             checkpoint={"sources_done": self.sources_done, "message": message})
        if self.log is not None:
            self.log(f"{self.done}/{self.plan.total} {message}")


def _summary(plan: SimilarPlan, params: SimilarParams, resumed_after: int) -> dict[str, Any]:
    sources = [d.source for d in plan.wanted]
    return {
        "model": plan.model_id, "top_k": params.top_k, "sources": [s.name for s in sources],
        "pairs": [f"{a.source.name}->{b.source.name}" for a in plan.wanted for b in plan.partners(a)],
        "rows": CrossSourceSimilarity.objects.filter(feature__source__in=sources).count(),
        "skipped_without_weights": plan.skipped, "resumed_after_sources": resumed_after,
    }
