"""A real Celery worker process consumes a task from the real Redis and writes to the real database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings

from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.jobs.tasks import noop_job_task
from neuronpedia.lib.jobs import JobStatus
from neuronpedia.queues import Queue
from tests.support import HEAL_FAST, celery_worker, stop


@pytest.fixture
def worker_process():
    """A `celery worker` subprocess bound to the test database and the tests' Redis db."""
    proc = celery_worker(Queue.DEFAULT, name="pytest")
    yield proc
    stop(proc)


@pytest.mark.django_db(transaction=True)
def test_a_job_runs_to_done_in_a_real_worker_through_redis(worker_process) -> None:
    assert settings.CELERY_BROKER_URL.endswith(f"/{os.environ.get('NP_TEST_REDIS_DB', 15)}")
    job = Job.objects.create(kind=JobKind.NOOP, title="health check")
    noop_job_task.delay(job.id, steps=3)
    deadline = time.monotonic() + 180  # a loaded CI machine can be slow to start a worker
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            break
        assert worker_process.poll() is None, worker_process.stdout.read()
        time.sleep(0.2)
    if job.status != JobStatus.DONE:
        output = stop(worker_process)
        pytest.fail(f"job {job.status} after 180 s; worker output:\n{output}")
    assert (job.done, job.total, job.result) == (3, 3, {"steps": 3})
    assert job.heartbeat_at is not None
    assert job.finished_at is not None


def _worker_with_beat(tmp_path: Path, name: str) -> subprocess.Popen:
    """A worker that also runs Celery beat (the stale-job sweeper), with 1 s heartbeats."""
    return celery_worker(Queue.DEFAULT, name=name, beat_dir=tmp_path, **HEAL_FAST)


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_is_killed_is_requeued_by_beat_and_finishes_without_a_human(tmp_path) -> None:
    from neuronpedia.jobs import registry  # noqa: PLC0415

    job = Job.objects.create(kind=JobKind.NOOP, title="killed mid-job", params={"steps": 12, "delay": 0.5})
    first = _worker_with_beat(tmp_path, "doomed")
    second = None
    try:
        registry.enqueue(job)  # outside a transaction: sent at once
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.done >= 2:
                break
            assert first.poll() is None, first.stdout.read()
            time.sleep(0.1)
        assert job.status == JobStatus.RUNNING, job.error
        assert job.done >= 2
        os.killpg(first.pid, signal.SIGKILL)  # the worker (and its beat) die mid-job
        first.wait(timeout=10)
        time.sleep(4)  # past the stale limit: still RUNNING, nobody beats any more
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING
        second = _worker_with_beat(tmp_path, "healer")  # a new worker's beat finds it and re-queues it
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.is_finished:
                break
            time.sleep(0.2)
        output = "" if job.status == JobStatus.DONE else stop(second)
        assert job.status == JobStatus.DONE, f"{job.status} {job.error}\n{output}"
        assert job.generation == 2  # claimed twice: once by each worker
        assert job.result == {"steps": 12}
    finally:
        stop(first)
        if second is not None:
            stop(second)
