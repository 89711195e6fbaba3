"""A dashboard job whose inference worker is SIGKILLed mid-job resumes by itself (Celery beat's sweeper
re-queues it) on the next worker, from its checkpoint, and finishes without a human."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.models import Activation, Model, Source, SourceSet
from inference import dashboards as service
from neuronpedia.jobs.models import Job
from neuronpedia.lib.jobs import JobStatus
from neuronpedia.queues import Queue
from tests.dashboards.conftest import TEXT
from tests.support import HEAL_FAST, celery_worker, kill, manage_process, stop, wait_until


def _inference_worker(config: Path, name: str) -> object:
    return manage_process("inference_worker", "--config", str(config), "--name", name,
                          "--loglevel", "WARNING", **HEAL_FAST)


@pytest.mark.django_db(transaction=True)
def test_a_killed_dashboard_job_is_requeued_and_resumes_from_its_checkpoint(
        worker_config: Path, tmp_path: Path) -> None:
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text(TEXT * 300)
    model = Model.objects.create(id="tiny", layers=2, dimension=64)
    source = Source.objects.create(model=model, source_set=SourceSet.objects.create(model=model, name="id"),
                                   name="0-id", layer=0, hook_name="blocks.0.hook_resid_post")
    params = service.DashboardParams(dataset=f"file:{tmp_path / 'texts'}", n_tokens=32 * 640,
                                     context_size=32, batch_size=2, checkpoint_every=1, umap=False,
                                     eval_sequences=2)
    doomed = _inference_worker(worker_config, "doomed")
    sweeper = celery_worker(Queue.DEFAULT, name="sweeper", beat_dir=tmp_path, **HEAL_FAST)
    healer = None
    try:
        job = service.start_dashboard_job(source=source, params=params)

        def checkpointed() -> bool:
            job.refresh_from_db()
            return job.checkpoint.get("batches_done", 0) >= 3 or job.is_finished

        wait_until(checkpointed, "the first checkpoints", alive=(doomed, sweeper))
        assert job.status == JobStatus.RUNNING, job.error
        kill(doomed)  # mid-job: no clean-up, no FAILED row; the heartbeat just stops
        stopped_at = Job.objects.get(pk=job.pk).checkpoint["batches_done"]
        healer = _inference_worker(worker_config, "healer")

        def resumed() -> Job | None:
            row = Job.objects.get(pk=job.pk)
            return row if row.generation == 2 and row.done else None

        first = wait_until(resumed, "the re-queued job's first progress", timeout=300, interval=0.02,
                           alive=(healer, sweeper))
        # its first progress starts past the checkpoint: it resumed, it did not start over
        assert first.done >= stopped_at * params.batch_size
        wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, "the job to finish on the new worker",
                   timeout=300, interval=0.2, alive=(healer, sweeper))
        job.refresh_from_db()
        assert job.status == JobStatus.DONE, f"{job.error}\n{stop(healer)}"
        assert job.generation == 2  # claimed once by each worker: re-queued by the sweeper, not by hand
        assert (job.done, job.total) == (params.n_sequences, params.n_sequences)
        assert 3 <= stopped_at < params.n_sequences // params.batch_size
        source.refresh_from_db()
        assert source.has_dashboards
        assert Activation.objects.filter(feature__source=source).count() == job.result["activations"]
        assert not Path(job.checkpoint.get("path") or tmp_path / "gone").exists()  # cleaned up when done
    finally:
        for proc in (doomed, sweeper, healer):
            if proc is not None:
                stop(proc)
