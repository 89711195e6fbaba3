"""Training the transcoders that attribution graphs need: start, resume and find TRAIN_TRANSCODERS jobs.

The work runs on the model's inference worker (inference/tasks/transcoders.py); this module is
the database side, used by `manage.py train_transcoders`, the admin button and `manage.py
bootstrap_transcoders` (neuronpedia.demo.bootstrap). Parameters are validated here with the trainer's own
config (no torch imported).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from inference.demo import DEMO_MODEL_ID, DEMO_TRANSCODER_SET
from inference_worker.protocol import TRAIN_TRANSCODERS_TASK
from inference_worker.transcoder_config import TranscoderTrainConfig, config_from_params
from neuronpedia.jobs import registry
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.jobs.services import create_job, resume_job
from neuronpedia.lib.jobs import JobStatus
from neuronpedia.queues import inference_queue

TASK_NAME = TRAIN_TRANSCODERS_TASK  # the name workers and stored jobs know
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
STOPPED = (JobStatus.FAILED, JobStatus.CANCELLED)


def training_params(*, set_name: str = DEMO_TRANSCODER_SET, steps: int | None = None,
                    tokens: int | None = None, width: int | None = None, k: int | None = None,
                    lr: float | None = None, batch_seqs: int | None = None,
                    context_size: int | None = None, eval_tokens: int | None = None,
                    splice_eval_tokens: int | None = None,
                    model_dtype: str | None = None) -> dict[str, Any]:
    """Job params: only what differs from the trainer's defaults (so the demo job's params are {} plus
    the set name). `steps` (optimiser steps) sets the token count from the batch size. Raises
    ValueError on values the trainer would refuse."""
    defaults = TranscoderTrainConfig()
    params: dict[str, Any] = {"set_name": set_name}
    given = {"d_transcoder": width, "k": k, "lr": lr, "batch_seqs": batch_seqs,
             "context_size": context_size, "eval_tokens": eval_tokens,
             "splice_eval_tokens": splice_eval_tokens, "model_dtype": model_dtype}
    params.update({key: value for key, value in given.items() if value is not None})
    if steps is not None and tokens is not None:
        raise ValueError("give --steps or --tokens, not both")
    if steps is not None:
        if steps < 1:
            raise ValueError("steps must be >= 1")
        per_batch = params.get("batch_seqs", defaults.batch_seqs) * params.get(
            "context_size", defaults.context_size)
        batches = -(-steps // defaults.steps_per_batch)
        params["n_tokens"] = batches * per_batch
    elif tokens is not None:
        params["n_tokens"] = tokens
    if params.get("model_dtype") not in (None, "float32", "bfloat16", "float16"):
        raise ValueError("model_dtype must be float32, bfloat16 or float16")
    config_from_params(params, DEMO_MODEL_ID)  # validates
    return params


def start_training_job(*, model_id: str, params: dict[str, Any], requested_by: Any = None,
                       enqueue: bool = True) -> Job:
    """Create a TRAIN_TRANSCODERS job and send it to the model's inference queue once the transaction
    commits (`enqueue=False` leaves it QUEUED for an in-process run). ValueError on bad params."""
    cfg = config_from_params(params, model_id)
    with transaction.atomic():
        job = create_job(kind=JobKind.TRAIN_TRANSCODERS, params=params, total=cfg.n_steps,
                         title=f"Train {cfg.set_name} transcoders for {model_id} (all layers, "
                               f"{cfg.d_transcoder} features each, {cfg.n_tokens:,} tokens)",
                         requested_by=requested_by, model_id_ref=model_id, source_ref=cfg.set_name)
        if enqueue:
            registry.enqueue(job)
    return job


def enqueue_training_job(job: Job) -> None:
    from neuronpedia.celery import app  # noqa: PLC0415

    app.send_task(TASK_NAME, kwargs={"job_id": job.id}, queue=inference_queue(job.model_id_ref))


def training_jobs(model_id: str, params: dict[str, Any]) -> Any:
    """Jobs that train exactly this configuration (same params), newest first."""
    return Job.objects.filter(kind=JobKind.TRAIN_TRANSCODERS, model_id_ref=model_id,
                              params=params).order_by("-created_at")


def ensure_training_job(*, model_id: str, params: dict[str, Any],
                        requested_by: Any = None) -> tuple[Job, str]:
    """The job that trains this configuration: a queued/running one is reused, a failed/cancelled one
    is resumed, a done one is returned as is; otherwise a new one is queued. Returns (job, what
    happened: 'running' | 'resumed' | 'done' | 'started')."""
    jobs = training_jobs(model_id, params)
    if (job := jobs.filter(status__in=ACTIVE).first()) is not None:
        return job, "running"
    if (job := jobs.filter(status=JobStatus.DONE).first()) is not None:
        return job, "done"
    if (job := jobs.filter(status__in=STOPPED).first()) is not None and resume_job(job.id):
        job.refresh_from_db()
        return job, "resumed"
    return start_training_job(model_id=model_id, params=params, requested_by=requested_by), "started"
