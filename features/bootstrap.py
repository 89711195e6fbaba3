"""From an empty database to a browsable demo: the steps behind `bin/np up` (manage.py bootstrap_demo).

1. register the demo source (SmolLM2-135M-Instruct + the committed 15-res-demo SAE);
2. wait for the demo model's inference worker, then generate the source's dashboards through the job
   system (on that worker: activations over the packaged Brown corpus, quantile bins, logits, cos-sim,
   UMAP and core evals);
3. explain the first features with the offline explainer (SmolLM2 itself, through an autointerp batch job
   on the CPU worker), which also embeds the explanations for semantic search;
4. optionally queue a background batch that explains the rest.

Every step is idempotent: finished work is skipped, a failed or cancelled job is resumed from its
checkpoint, a running one is followed. Progress is written through `say`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from features import demo, inference
from features.models import Eval, Feature, Source
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.lib.jobs import JobStatus

Say = Callable[[str], None]


class BootstrapError(Exception):
    pass


@dataclass(frozen=True)
class BootstrapPlan:
    tokens: int = 204_800
    explain: int = 48
    explain_rest: bool = False
    worker_timeout: float = 600.0
    job_timeout: float = 3600.0


def bootstrap_demo(plan: BootstrapPlan, say: Say) -> Source:
    source = demo.register_demo_source()
    say(f"demo source registered: /{source.model_id}/{source.name}/")
    _wait_for_worker(source, plan.worker_timeout, say)
    _dashboards(source, plan, say)
    _explanations(source, plan, say)
    return source


def _wait_for_worker(source: Source, timeout: float, say: Say) -> None:
    deadline = time.monotonic() + timeout
    announced = False
    while not inference.live_hosts(source.model_id).filter(sources=source).exists():
        if time.monotonic() > deadline:
            raise BootstrapError(f"no inference worker serves {source.model_id} after {timeout:.0f} s; "
                                 f"start one: python manage.py inference_worker --config {demo.DEMO_CONFIG}")
        if not announced:
            say("waiting for the inference worker to load the model (first time: converts SmolLM2, ~30 s)")
            announced = True
        time.sleep(1)


def _dashboards(source: Source, plan: BootstrapPlan, say: Say) -> None:
    from features.dashboards import DashboardParams, resume_dashboard_job, start_dashboard_job  # noqa: PLC0415

    done = Eval.objects.filter(source=source, type="core").first()
    generated = (source.num_prompts or 0) * (source.num_tokens_in_prompt or 128)
    if source.has_dashboards and done and generated >= plan.tokens:
        say(f"dashboards: already generated ({source.num_prompts} prompts)")
        return
    jobs = Job.objects.filter(kind=JobKind.GENERATE_DASHBOARDS, model_id_ref=source.model_id,
                              source_ref=source.name, params__n_tokens=plan.tokens)
    job = jobs.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).first()
    if job is None and (failed := jobs.filter(status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).first()):
        say(f"dashboards: resuming job #{failed.id} from its checkpoint")
        resume_dashboard_job(failed.id)
        job = failed
    if job is None:
        job = start_dashboard_job(source=source, params=DashboardParams(n_tokens=plan.tokens))
        say(f"dashboards: job #{job.id} over {plan.tokens:,} tokens of the Brown corpus (/jobs/{job.id}/)")
    follow(job.id, "dashboards", plan.job_timeout, say)


def _explanations(source: Source, plan: BootstrapPlan, say: Say) -> None:
    from autointerp.batch import BatchParams  # noqa: PLC0415
    from autointerp.explainers import NP_MAX_ACT_LOGITS  # noqa: PLC0415
    from autointerp.llm import LOCAL_MODEL  # noqa: PLC0415
    from autointerp.services import start_autointerp_batch  # noqa: PLC0415

    if plan.explain <= 0:
        return
    alive = Feature.objects.filter(source=source, is_dead=False).order_by("index")
    first = list(alive.values_list("pk", flat=True)[: plan.explain])
    explained = alive.filter(pk__in=first, explanations__explanation_model_id=LOCAL_MODEL).distinct().count()
    if explained < len(first):
        say(f"explanations: {len(first) - explained} of the first {len(first)} features, with the offline "
            f"explainer ({LOCAL_MODEL}); the first call loads it")
        job = start_autointerp_batch(params=BatchParams(feature_ids=tuple(first), concurrency=1,
                                                        explainer_type=NP_MAX_ACT_LOGITS, model=LOCAL_MODEL))
        follow(job.id, "explanations", plan.job_timeout, say)
    else:
        say(f"explanations: the first {len(first)} features are explained")
    if plan.explain_rest:
        busy = Job.objects.filter(kind=JobKind.AUTOINTERP_BATCH, source_ref=source.name,
                                  status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists()
        if not busy:
            job = start_autointerp_batch(params=BatchParams(source_id=source.pk, concurrency=1,
                                                            explainer_type=NP_MAX_ACT_LOGITS,
                                                            model=LOCAL_MODEL))
            say(f"explanations: the other features are explained in the background (job #{job.id}, "
                f"/jobs/{job.id}/; cancel it there)")


def follow(job_id: int, label: str, timeout: float, say: Say) -> Job:
    """Print progress of a job until it ends; raise BootstrapError unless it is DONE."""
    deadline = time.monotonic() + timeout
    last: tuple[str, int] | None = None
    last_said = 0.0
    while True:
        job = Job.objects.get(id=job_id)
        state = (job.status, job.done)
        if state != last or time.monotonic() - last_said > 30:  # on progress, else every 30 s
            line = f"{label}: {job.status_label.lower()} {job.done}/{job.total or '?'}"
            if job.eta_seconds is not None:
                line += f", about {job.eta_seconds:.0f} s left"
            say(line)
            last, last_said = state, time.monotonic()
        if job.is_finished:
            break
        if time.monotonic() > deadline:
            raise BootstrapError(f"{label}: job #{job_id} still {job.status} after {timeout:.0f} s")
        time.sleep(2)
    if job.status != JobStatus.DONE:
        raise BootstrapError(f"{label}: job #{job_id} ended {job.status}: {job.error}")
    return job
