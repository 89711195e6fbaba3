"""The attribution-graph task on `inference.<model_id>` (`inference_worker.tasks.generate_graph`), and its
body (also used by the benchmark and tests).

graphs.services.request_graph creates a PENDING Graph row and a GENERATE_GRAPH job whose params carry the
prompt, the circuit-tracer knobs, the slug and the graph's id, then sends this task. The body claims the
job (QUEUED -> RUNNING; a redelivered or duplicate message finds it RUNNING or DONE and does nothing),
builds (once per process and transcoder-set version) circuit-tracer's replacement model, runs
`attribution.generate_graph` with circuit-tracer's phases reported as progress on the job row
(`done`/`total` and `result.stage`, which the graph page polls), stores the graph with
graphs.services.store_generated_graph (READY) and marks the job DONE with the timings.

A failure ends the job FAILED and the Graph row FAILED with a readable reason in `job.error` and
`graph.metadata.error` (the transcoders are not trained yet, the prompt is too long ...). A failed or
cancelled job that is re-queued runs again and overwrites the graph.

torch and the model stack are imported inside functions, so the web process can import this module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import shared_task

from inference_worker.protocol import GENERATE_GRAPH_TASK

TASK_NAME = GENERATE_GRAPH_TASK  # the name workers and stored jobs know
N_STEPS = 10  # progress units: 1 load, 2 replacement model, 3-9 circuit-tracer phases, 10 store
Log = Callable[[str], None]

logger = logging.getLogger(__name__)


class GraphJobError(Exception):
    """A failure with a message meant for the user (no traceback needed)."""


@shared_task(name=TASK_NAME, acks_late=True, soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300)
def generate_graph(job_id: int) -> bool:
    """Safe to re-run: only a QUEUED job is claimed (a DONE one is a no-op); re-running a re-queued
    job overwrites its graph."""
    from inference.tasks.operations import loaded  # noqa: PLC0415

    return run_graph_job(job_id, worker=loaded())


def run_graph_job(job_id: int, *, worker: Any, log: Log | None = None) -> bool:
    """Claim and run a GENERATE_GRAPH job; False when it was not QUEUED (done, running elsewhere,
    cancelled) or it failed (the job and graph rows then say why)."""
    from neuronpedia.jobs.services import JobCancelled, claim_job, mark_cancelled  # noqa: PLC0415

    if not claim_job(job_id):
        return False
    log = log or (lambda _m: None)
    try:
        _run(job_id, worker, log)
    except JobCancelled:
        mark_cancelled(job_id)
        _fail_graph(job_id, "the generation was cancelled")
        return False
    except Exception as exc:  # the row must say why, whatever went wrong
        reason = _reason(exc)
        if not isinstance(exc, (GraphJobError, ValueError, LookupError)):
            logger.exception("graph job %s failed", job_id)
        _fail(job_id, reason)
        log(f"failed: {reason}")
        return False
    return True


def _reason(exc: Exception) -> str:
    from inference_worker.transcoders import TranscodersNotReady  # noqa: PLC0415

    if isinstance(exc, (GraphJobError, TranscodersNotReady, ValueError)):
        return str(exc).strip("'\"")
    return f"{type(exc).__name__}: {exc}"


def _run(job_id: int, worker: Any, log: Log) -> None:
    from graphs.services import store_generated_graph  # noqa: PLC0415
    from inference_worker.attribution import GraphParams, generate_graph  # noqa: PLC0415
    from neuronpedia.jobs.models import Job  # noqa: PLC0415
    from neuronpedia.jobs.services import finish_job  # noqa: PLC0415

    job = Job.objects.get(id=job_id)
    p = dict(job.params or {})
    model_id = p.get("model_id") or job.model_id_ref
    if model_id != worker.config.model_id:
        raise GraphJobError(f"job {job_id} is for model {model_id!r}, this worker serves "
                            f"{worker.config.model_id!r}")
    scan = p.get("source_set") or job.source_ref
    slug = p.get("slug") or f"graph-{job_id}"
    params = GraphParams.from_dict(p)
    progress = _Progress(job_id, log)
    started = time.perf_counter()
    progress(0, "loading the transcoders")
    tset = worker.transcoder_set(scan)
    progress(1, f"building the replacement model ({tset.n_layers} transcoders, "
                f"{tset.d_transcoder:,} features each)")
    t_rm = time.perf_counter()
    rm = worker.replacement_model(scan)
    rm_s = time.perf_counter() - t_rm
    progress(2, "attribution")
    data, info = generate_graph(
        rm, params, slug=slug, scan=scan, model_id=model_id, token_limit=worker.config.graph_token_limit,
        progress=lambda i, _total, msg: progress(3 + min(i, 6), msg))
    progress(9, f"storing {info['nodes']} nodes and {info['links']} links")
    t_store = time.perf_counter()
    graph = store_generated_graph(job=job, graph=data)
    store_s = time.perf_counter() - t_store
    result = {**info, "replacement_model_s": round(rm_s, 2), "store_s": round(store_s, 2),
              "total_s": round(time.perf_counter() - started, 2), "graph_id": graph.id, "slug": graph.slug,
              "transcoders": tset.path, "stage": "done"}
    Job.objects.filter(id=job_id).update(done=N_STEPS, total=N_STEPS)
    finish_job(job_id, result=result)
    log(f"done: {info['nodes']} nodes, {info['links']} links in {result['total_s']} s")


class _Progress:
    """Progress on the job row: `done` of N_STEPS and the phase in result.stage; raises JobCancelled
    when a cancel was requested (also from inside circuit-tracer's phase logging)."""

    def __init__(self, job_id: int, log: Log) -> None:
        self.job_id, self.log = job_id, log

    def __call__(self, step: int, message: str) -> None:
        from neuronpedia.jobs.models import Job  # noqa: PLC0415
        from neuronpedia.jobs.services import record_progress  # noqa: PLC0415
        from neuronpedia.lib.jobs import JobStatus  # noqa: PLC0415

        Job.objects.filter(id=self.job_id, status=JobStatus.RUNNING).update(result={"stage": message})
        record_progress(self.job_id, done=step, total=N_STEPS)
        self.log(message)


def _fail(job_id: int, reason: str) -> None:
    from neuronpedia.jobs.services import fail_job  # noqa: PLC0415

    fail_job(job_id, error=reason)
    _fail_graph(job_id, reason)


def _fail_graph(job_id: int, reason: str) -> None:
    from graphs.models import Graph, GraphStatus  # noqa: PLC0415

    for graph in Graph.objects.filter(job_id=job_id).exclude(status=GraphStatus.READY):
        graph.status = GraphStatus.FAILED
        graph.metadata = {**(graph.metadata or {}), "error": reason}
        graph.save(update_fields=["status", "metadata", "updated_at"])
