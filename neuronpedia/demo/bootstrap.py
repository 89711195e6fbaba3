"""From an empty database to a browsable demo: the steps behind `bin/np up` (manage.py bootstrap_demo).

1. register the demo source (SmolLM2-135M-Instruct + the committed 15-res-demo SAE);
2. wait for the demo model's inference worker, then generate the source's dashboards through the job
   system (on that worker: activations over the packaged Brown corpus, quantile bins, logits, cos-sim,
   UMAP and core evals);
3. explain the first features with the offline explainer `np_offline` (token analysis of the examples +
   a constrained SmolLM2 candidate, best kept; autointerp/offline.py) through an autointerp batch job on
   the CPU worker, which also embeds the explanations for semantic search and scores each one (held-out
   embedding ROC-AUC);
4. queue a background batch that explains (and scores) the rest.

Every step is idempotent: finished work is skipped, a failed or cancelled job is resumed from its
checkpoint, a running one is followed. Progress is written through `say`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.models import Eval, Feature, Source
from inference import client as inference
from inference import demo
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.jobs.services import resume_job
from neuronpedia.lib.jobs import JobStatus

Say = Callable[[str], None]


class BootstrapError(Exception):
    pass


@dataclass(frozen=True)
class BootstrapPlan:
    tokens: int = 204_800
    explain: int = 300
    explain_rest: bool = True
    use_llm: str = "auto"
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
    from inference.dashboards import DashboardParams, start_dashboard_job  # noqa: PLC0415

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
        resume_job(failed.id)
        job = failed
    if job is None:
        job = start_dashboard_job(source=source, params=DashboardParams(n_tokens=plan.tokens))
        say(f"dashboards: job #{job.id} over {plan.tokens:,} tokens of the Brown corpus (/jobs/{job.id}/)")
    follow(job.id, "dashboards", plan.job_timeout, say)


def _explanations(source: Source, plan: BootstrapPlan, say: Say) -> None:
    from autointerp.batch import BatchParams, start_autointerp_batch  # noqa: PLC0415
    from autointerp.explainers import OFFLINE  # noqa: PLC0415
    from autointerp.llm import LOCAL_MODEL  # noqa: PLC0415

    if plan.explain <= 0:
        return
    alive = Feature.objects.filter(source=source, is_dead=False).order_by("index")
    first = list(alive.values_list("pk", flat=True)[: plan.explain])
    explained = alive.filter(pk__in=first, explanations__type_id=OFFLINE).distinct().count()
    if explained < len(first):
        say(f"explanations: {len(first) - explained} of the first {len(first)} features, with the offline "
            f"explainer ({LOCAL_MODEL}); the first call loads it")
        job = start_autointerp_batch(params=BatchParams(feature_ids=tuple(first), concurrency=1,
                                                        explainer_type=OFFLINE, model=LOCAL_MODEL,
                                                        use_llm=plan.use_llm))
        follow(job.id, "explanations", plan.job_timeout, say)
    else:
        say(f"explanations: the first {len(first)} features are explained")
    if plan.explain_rest:
        busy = Job.objects.filter(kind=JobKind.AUTOINTERP_BATCH, source_ref=source.name,
                                  status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists()
        if not busy:
            job = start_autointerp_batch(params=BatchParams(source_id=source.pk, concurrency=1,
                                                            explainer_type=OFFLINE, model=LOCAL_MODEL,
                                                            use_llm=plan.use_llm))
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


# --- the demo transcoders (attribution graphs): `bin/np up` runs this in the background ----------------


@dataclass(frozen=True)
class TranscoderPlan:
    """Dashboards of transcoder features are kept small (30 layers): few tokens, no UMAP, no evals."""

    dashboard_tokens: int = 8_192
    dashboard_context: int = 64
    top_k: int = 10
    n_bins: int = 3
    bin_size: int = 2
    # the full-model forwards of the spliced/ablated evals cost more than the whole dashboard pass of a
    # layer; the training job's report already holds each layer's splice metrics (Eval "training")
    eval_sequences: int = 0
    train_timeout: float = 6 * 3600.0
    dashboards: bool = True
    wait_dashboards: bool = False
    job_timeout: float = 3600.0


def transcoder_dashboard_params(plan: TranscoderPlan) -> Any:
    from inference.dashboards import DashboardParams  # noqa: PLC0415

    return DashboardParams(n_tokens=plan.dashboard_tokens, context_size=plan.dashboard_context,
                           top_k=plan.top_k, n_bins=plan.n_bins, bin_size=plan.bin_size, umap=False,
                           eval_sequences=plan.eval_sequences)


def bootstrap_transcoders(plan: TranscoderPlan, say: Say) -> list[Source]:
    """Train (or resume, or reuse) the demo transcoder set through its job, make sure its catalog rows
    exist, then queue dashboards for every layer that has none. Idempotent like bootstrap_demo."""
    from inference.transcoder_training import ensure_training_job, training_params  # noqa: PLC0415

    job, what = ensure_training_job(model_id=demo.DEMO_MODEL_ID, params=training_params())
    say(f"transcoders: training job #{job.id} {what} (/jobs/{job.id}/)")
    job = follow(job.id, "transcoders", plan.train_timeout, say)
    path = (job.checkpoint or {}).get("path") or (job.result or {}).get("path")
    if path and Path(path).is_dir():  # same machine as the worker: (re)write the rows from the files
        demo.register_transcoder_set(folder=Path(path))
    sources = list(Source.objects.filter(model_id=demo.DEMO_MODEL_ID, source_set__type="transcoder",
                                         source_set__name=demo.DEMO_TRANSCODER_SET).order_by("layer"))
    if not sources:
        raise BootstrapError(f"transcoders: job #{job.id} finished but no {demo.DEMO_TRANSCODER_SET} "
                             "sources are in the catalog")
    say(f"transcoders: {len(sources)} sources of {demo.DEMO_TRANSCODER_SET} in the catalog "
        f"(mean explained variance {(job.result.get('mean') or {}).get('explained_variance')})")
    if plan.dashboards:
        jobs = queue_transcoder_dashboards(sources, plan, say)
        if plan.wait_dashboards:
            for dash in jobs:
                follow(dash.id, f"dashboards {dash.source_ref}", plan.job_timeout, say)
    return sources


def queue_transcoder_dashboards(sources: list[Source], plan: TranscoderPlan, say: Say) -> list[Job]:
    """A dashboard job per source without dashboards (a running one is left alone, a stopped one
    resumed); they run one after another on the model's inference worker."""
    from inference.dashboards import start_dashboard_job  # noqa: PLC0415

    params = transcoder_dashboard_params(plan)
    queued = []
    for source in sources:
        if source.has_dashboards:
            continue
        jobs = Job.objects.filter(kind=JobKind.GENERATE_DASHBOARDS, model_id_ref=source.model_id,
                                  source_ref=source.name)
        job = jobs.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).first()
        if job is None and (stopped := jobs.filter(status__in=[JobStatus.FAILED, JobStatus.CANCELLED],
                                                   params=params.to_dict()).first()):
            resume_job(stopped.id)
            job = stopped
        queued.append(job or start_dashboard_job(source=source, params=params))
    if queued:
        say(f"transcoders: dashboards queued for {len(queued)} layers ({plan.dashboard_tokens:,} tokens "
            f"each, jobs #{queued[0].id}..#{queued[-1].id}; they run in the background)")
    else:
        say("transcoders: every layer has dashboards")
    return queued
