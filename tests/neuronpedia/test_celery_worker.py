"""A real Celery worker process consumes a task from the real Redis and writes to the real database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.jobs.tasks import noop_job_task
from neuronpedia.lib.jobs import JobStatus
from neuronpedia.queues import Queue

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_process():
    """A `celery worker` subprocess bound to the test database and the tests' Redis db."""
    db = connection.settings_dict
    env = {**os.environ,
           "DJANGO_SETTINGS_MODULE": "neuronpedia.settings.test",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "neuronpedia", "worker", "-Q", Queue.DEFAULT,
         "--pool", "solo", "--without-mingle", "--without-gossip", "-n", "pytest@%h",
         "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


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
        worker_process.terminate()
        output = worker_process.communicate(timeout=30)[0]
        pytest.fail(f"job {job.status} after 180 s; worker output:\n{output}")
    assert (job.done, job.total, job.result) == (3, 3, {"steps": 3})
    assert job.heartbeat_at is not None
    assert job.finished_at is not None
