from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from neuronpedia.jobs import services
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.jobs.tasks import noop_job_task
from neuronpedia.lib.jobs import JobStatus

pytestmark = pytest.mark.django_db


def _job() -> Job:
    return services.create_job(kind=JobKind.NOOP, title="t")


def test_a_job_can_be_claimed_only_once() -> None:
    job = _job()
    assert services.claim_job(job.id) is True
    assert services.claim_job(job.id) is False


def test_running_the_task_twice_is_harmless() -> None:
    job = _job()
    noop_job_task(job.id, steps=2)
    noop_job_task(job.id, steps=5)  # redelivered message: the job is DONE, nothing changes
    job.refresh_from_db()
    assert (job.status, job.done, job.total) == (JobStatus.DONE, 2, 2)


def test_task_arguments_survive_json() -> None:
    assert json.loads(json.dumps([_job().id, 3, 0.0]))


def test_cancel_a_queued_job_is_immediate_and_a_running_one_stops_at_next_progress() -> None:
    queued, running = _job(), _job()
    services.cancel_job(queued.id)
    queued.refresh_from_db()
    assert queued.status == JobStatus.CANCELLED
    services.claim_job(running.id)
    services.cancel_job(running.id)
    with pytest.raises(services.JobCancelled):
        services.record_progress(running.id, done=1)


def test_job_outcome_records_failures_with_their_message() -> None:
    job = _job()
    services.claim_job(job.id)
    with pytest.raises(RuntimeError), services.job_outcome(job.id):
        raise RuntimeError("disk full")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "RuntimeError: disk full"


def test_stale_running_jobs_are_failed_not_restarted(settings) -> None:
    settings.JOB_STALE_AFTER_SECONDS = 60
    stale, fresh = _job(), _job()
    for job in (stale, fresh):
        services.claim_job(job.id)
    Job.objects.filter(id=stale.id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert services.fail_stale_jobs() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == JobStatus.FAILED
    assert "heartbeat" in stale.error
    assert fresh.status == JobStatus.RUNNING


def test_a_failed_job_can_be_requeued_and_resumes_from_its_checkpoint() -> None:
    job = _job()
    services.claim_job(job.id)
    services.record_progress(job.id, done=5, total=10, checkpoint={"file": "batch-4"})
    services.fail_job(job.id, error="killed")
    assert services.requeue_job(job.id)
    job.refresh_from_db()
    assert (job.status, job.done, job.checkpoint) == (JobStatus.QUEUED, 5, {"file": "batch-4"})


def test_job_page_polls_until_finished(client) -> None:
    job = _job()
    response = client.get(f"/jobs/{job.id}/status/")
    assert response.status_code == 200
    assert b"hx-get" in response.content
    noop_job_task(job.id, steps=1)
    response = client.get(f"/jobs/{job.id}/status/")
    assert response.status_code == 286  # htmx: stop polling
    assert b"Done" in response.content


def test_queue_names_live_in_one_place() -> None:
    from neuronpedia.queues import Queue, inference_queue, route_task

    assert inference_queue("gpt2-small") == "inference.gpt2-small"
    assert route_task("features.tasks.import_source_task", (), {}, {}) == {"queue": Queue.IMPORTS}
    assert route_task("neuronpedia.jobs.tasks.noop_job_task", (), {}, {}) == {"queue": "default"}
    assert route_task("inference_worker.tasks.steer_task", (), {}, {"queue": "inference.m"}) is None
    with pytest.raises(ValueError, match="invalid model id"):
        inference_queue("bad id")
