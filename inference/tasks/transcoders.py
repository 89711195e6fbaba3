"""The transcoder-training task on `inference.<model_id>`, and its body (also used by --inline runs).

`train_transcoders(job_id)` claims a TRAIN_TRANSCODERS job (QUEUED -> RUNNING, so a redelivered message
does nothing), trains every layer's transcoder with `inference_worker.training_transcoders` into
``<cache>/transcoders/<model>/<set>/versions/<hash>/`` and writes progress (step / steps, a short message,
the checkpoint's path) on the job about once a second. The trainer checkpoints every
``checkpoint_every`` steps, so a killed worker's job, re-queued (by hand or by the stale-job sweeper),
resumes from its last checkpoint; a cancel saves a checkpoint first. A version already complete on disk
ends the job at once with its stored report (idempotent). On success the set is entered in the catalog
(inference.demo.register_transcoder_set, the path bootstrap uses) and the per-layer report is the result.

torch and the model stack are imported inside functions, so the web process can import this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import shared_task

from inference_worker.protocol import TRAIN_TRANSCODERS_TASK

TASK_NAME = TRAIN_TRANSCODERS_TASK  # the name workers and stored jobs know
Log = Callable[[str], None]


@shared_task(name=TASK_NAME, acks_late=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def train_transcoders_task(job_id: int) -> None:
    """Safe to re-run: only a QUEUED job is claimed; training resumes from the version's checkpoint and
    a complete version is reused as is; catalog rows are upserted."""
    from inference.tasks.operations import loaded  # noqa: PLC0415

    run_training_job(job_id, model=loaded().model)


def run_training_job(job_id: int, *, model: Any, log: Log | None = None,
                     root: Path | None = None) -> bool:
    """Claim and run a TRAIN_TRANSCODERS job; False when it was not QUEUED (someone else owns it).
    Failures end the job FAILED with the error (and re-raise); a cancel ends it CANCELLED."""
    from neuronpedia.jobs.services import claim_job, job_outcome  # noqa: PLC0415

    if not claim_job(job_id):
        return False
    with job_outcome(job_id):
        _run(job_id, model, log or (lambda _m: None), root)
    return True


def _run(job_id: int, model: Any, log: Log, root: Path | None) -> None:
    from inference.demo import register_transcoder_set  # noqa: PLC0415
    from inference_worker import training_transcoders as tt  # noqa: PLC0415
    from inference_worker.transcoder_config import config_from_params  # noqa: PLC0415
    from neuronpedia.jobs.models import Job  # noqa: PLC0415
    from neuronpedia.jobs.services import JobCancelled, finish_job, record_progress  # noqa: PLC0415

    job = Job.objects.get(id=job_id)
    cfg = config_from_params(job.params, job.model_id_ref)
    out = tt.version_dir(cfg, root)
    progress = _Progress(job_id, out, log, record_progress)
    progress(0, cfg.n_steps, f"preparing: {cfg.n_tokens:,} tokens of {cfg.corpus}", force=True)
    train_model = _training_model(model, cfg.model_dtype)
    result = tt.train_transcoders(train_model, cfg, out, progress=progress,
                                  should_stop=progress.should_stop)
    if result is None:  # cancelled: the checkpoint is saved
        raise JobCancelled(f"job {job_id} was cancelled at step {progress.step}")
    sources = register_transcoder_set(folder=out)
    summary = report(result.to_dict(), cfg)
    summary["catalog"] = {"source_set": cfg.set_name, "sources": [s.name for s in sources]}
    progress.finished()
    finish_job(job_id, result=summary)
    log(f"done: {len(sources)} transcoders in {out}")


def _training_model(model: Any, dtype: str) -> Any:
    """The worker's model, or a copy in the dtype the training config asks for (e.g. bfloat16: the
    activation pass is ~3x faster on CPUs with native bf16 than the worker's float32)."""
    import copy  # noqa: PLC0415

    import torch  # noqa: PLC0415

    want = getattr(torch, dtype)
    if model.cfg.dtype == want:
        return model
    clone = copy.deepcopy(model)
    clone.to(want)
    clone.cfg.dtype = want
    return clone


def report(result: dict[str, Any], cfg: Any) -> dict[str, Any]:
    """The job result: the trainer's per-layer table and replacement-model metrics plus the settings
    that produced them (JSON; the job page renders it)."""
    layers = result["layers"]
    mean = {key: round(sum(row[key] for row in layers) / len(layers), 4)
            for key in ("explained_variance", "l0", "dead_fraction", "splice_top1_agreement", "splice_kl")
            if layers and key in layers[0]}
    return {**result, "mean": mean, "settings": {
        "set": cfg.set_name, "d_transcoder": cfg.d_transcoder, "k": cfg.k, "n_tokens": cfg.n_tokens,
        "steps": cfg.n_steps, "batch_tokens": cfg.batch_seqs * cfg.context_size, "lr": cfg.lr,
        "corpus": cfg.corpus, "model_dtype": cfg.model_dtype}}


class _Progress:
    """The trainer's progress callback: a job write at most once a second (and at the first and last
    step); remembers a cancel so the trainer stops at its next step with a checkpoint. The job's total
    is the steps plus a tenth for the held-out evaluation, so the ETA counts it."""

    def __init__(self, job_id: int, out: Path, log: Log, record: Callable[..., None]) -> None:
        self.job_id, self.out, self.log, self.record = job_id, out, log, record
        self.last = 0.0
        self.step = self.total = 0
        self.cancelled = False

    def __call__(self, done: int, total: int, message: str, force: bool = False) -> None:
        from neuronpedia.jobs.services import JobCancelled  # noqa: PLC0415

        self.step, self.total = done, total + max(1, total // 10)
        self.log(f"{done}/{total} {message}")
        now = time.monotonic()
        if not (force or done in (0, total) or now - self.last >= 1.0):
            return
        self.last = now
        try:
            self.record(self.job_id, done=done, total=self.total,
                        checkpoint={"path": str(self.out), "step": done, "message": message[:300]})
        except JobCancelled as exc:
            if type(exc) is not JobCancelled:  # JobSuperseded: another run owns the job now
                raise
            self.cancelled = True

    def finished(self) -> None:
        self.record(self.job_id, done=self.total, total=self.total,
                    checkpoint={"path": str(self.out), "step": self.step, "message": "done"})

    def should_stop(self) -> bool:
        return self.cancelled
