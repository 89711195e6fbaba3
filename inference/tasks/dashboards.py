"""The dashboard-generation task on `inference.<model_id>`, and its body (also used by --inline runs).

The body claims the job (QUEUED -> RUNNING, so a redelivered message does nothing), tokenises the
dataset (deterministic), streams it through `inference_worker.dashboards` with progress on the job
about once a second and a checkpoint every `checkpoint_every` batches under
NP_DATA_DIR/checkpoints/dashboards-job-<id>/ (its path in Job.checkpoint). A FAILED or CANCELLED job
that is re-queued resumes at the batch after its last checkpoint; the result then replaces the
source's generated rows in one transaction (inference.dashboards.write_dashboards).

torch and the model stack are imported inside functions, so the web process can import this module.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import shared_task

from inference_worker.protocol import GENERATE_DASHBOARDS_TASK

TASK_NAME = GENERATE_DASHBOARDS_TASK  # the name workers and stored jobs know
Log = Callable[[str], None]


def checkpoint_dir(job_id: int) -> Path:
    from django.conf import settings  # noqa: PLC0415

    return Path(settings.NP_DATA_DIR) / "checkpoints" / f"dashboards-job-{job_id}"


@shared_task(name=TASK_NAME, acks_late=True, soft_time_limit=12 * 3600, time_limit=12 * 3600 + 300)
def generate_dashboards_task(job_id: int) -> None:
    """Safe to re-run: only a QUEUED job is claimed; a re-queued one resumes from its checkpoint and
    its result replaces the source's generated rows atomically."""
    from inference.tasks.operations import loaded  # noqa: PLC0415

    worker = loaded()
    _attach_transcoders(worker, job_id)
    run_dashboard_job(job_id, model=worker.model, registry=worker.registry)


def _attach_transcoders(worker: Any, job_id: int) -> None:
    """A `{L}-<set>` transcoder source is served once its set is on disk (trained after the worker
    started): attach the worker's transcoder sets when the job's source is not served yet."""
    from neuronpedia.jobs.models import Job  # noqa: PLC0415

    source = Job.objects.filter(id=job_id).values_list("source_ref", flat=True).first()
    if source and source not in worker.registry and hasattr(worker, "refresh_transcoders"):
        worker.refresh_transcoders()


def run_dashboard_job(job_id: int, *, model: Any, registry: Any, log: Log | None = None) -> bool:
    """Claim and run a GENERATE_DASHBOARDS job; False when it was not QUEUED (someone else owns it).
    Failures end the job FAILED with the error (and re-raise); a cancel ends it CANCELLED."""
    from neuronpedia.jobs.services import claim_job, job_outcome  # noqa: PLC0415

    if not claim_job(job_id):
        return False
    with job_outcome(job_id):
        _run(job_id, model, registry, log or (lambda _m: None))
    return True


def _run(job_id: int, model: Any, registry: Any, log: Log) -> None:
    from features.models import Source  # noqa: PLC0415
    from inference.dashboards import DashboardParams, write_dashboards  # noqa: PLC0415
    from inference_worker import dashboards as dash  # noqa: PLC0415
    from inference_worker.datasets import DatasetSpec, load_sequences  # noqa: PLC0415
    from neuronpedia.jobs.models import Job  # noqa: PLC0415
    from neuronpedia.jobs.services import finish_job, record_progress  # noqa: PLC0415

    job = Job.objects.get(id=job_id)
    params = DashboardParams.from_dict(job.params)
    source_row = Source.objects.get(model_id=job.model_id_ref, name=job.source_ref)
    source = registry.get(job.source_ref)
    spec = DatasetSpec.parse(params.dataset)
    log(f"tokenising {spec.label}: {params.n_sequences} x {params.context_size} tokens")
    seqs = load_sequences(model, spec, params.n_sequences, params.context_size)
    fingerprint = hashlib.sha256(seqs.numpy().tobytes()).hexdigest()[:16]
    cfg = dash.DashboardConfig(**params.dashboard_config())
    state = _resume_state(job, checkpoint_dir(job_id), fingerprint, log)
    gen = dash.DashboardGenerator(model, source, params.context_size, cfg, state)
    progress = _Progress(job_id, len(seqs), params.checkpoint_every, fingerprint, log, record_progress)
    progress(gen, force=True)
    dash.run_stream(gen, dash.iter_batches(seqs, params.batch_size), on_batch=progress)
    log("finalizing (logits, cos-sim, UMAP, examples) and writing rows")
    result = gen.finalize()
    summary = write_dashboards(source=source_row, result=result, dataset=spec.label,
                               context_size=params.context_size)
    finish_job(job_id, result=summary)
    dash.remove_checkpoint(checkpoint_dir(job_id))
    log(f"done: {summary['features']} features, {summary['activations']} examples, "
        f"{summary['dead']} dead")


def _resume_state(job: Any, directory: Path, fingerprint: str, log: Log) -> Any:
    from inference_worker import dashboards as dash  # noqa: PLC0415

    if not dash.checkpoint_exists(directory):
        return None
    if job.checkpoint.get("sequences") != fingerprint:
        log("checkpoint was made from other data: starting over")
        dash.remove_checkpoint(directory)
        return None
    state = dash.DashboardState.load(directory)
    log(f"resuming after batch {state.batches_done} ({state.n_seqs} sequences)")
    return state


class _Progress:
    """Called after every batch: a checkpoint every N batches, a progress write at most every second."""

    def __init__(self, job_id: int, total: int, every: int, fingerprint: str, log: Log,
                 record: Callable[..., None]) -> None:
        self.job_id, self.total, self.every, self.fingerprint = job_id, total, every, fingerprint
        self.log, self.record = log, record
        self.last = 0.0
        self.started = time.monotonic()
        self.first_seqs: int | None = None  # sequences already done when this run started (resume)

    def __call__(self, gen: Any, force: bool = False) -> None:
        st = gen.state
        if self.first_seqs is None:
            self.first_seqs = st.n_seqs
        checkpoint = None
        if st.batches_done and (st.batches_done % self.every == 0 or st.n_seqs >= self.total):
            directory = checkpoint_dir(self.job_id)
            st.save(directory)
            checkpoint = {"path": str(directory), "batches_done": st.batches_done,
                          "sequences": self.fingerprint}
        now = time.monotonic()
        if force or checkpoint is not None or now - self.last >= 1.0:
            self.last = now
            self.record(self.job_id, done=st.n_seqs, total=self.total, checkpoint=checkpoint)
            rate = (st.n_seqs - self.first_seqs) * st.context_size / max(now - self.started, 1e-9)
            self.log(f"{st.n_seqs}/{self.total} sequences ({rate:,.0f} tokens/s)")
