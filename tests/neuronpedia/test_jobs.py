from __future__ import annotations

import json
import time
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


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """Messages the registry would send for NOOP jobs (no broker needed)."""
    from neuronpedia.jobs import registry  # noqa: PLC0415

    ids: list[int] = []
    noop = registry.JobType(JobKind.NOOP, lambda j: ids.append(j.id))
    monkeypatch.setitem(registry._TYPES, JobKind.NOOP, noop)
    return ids


def _stale(job: Job) -> None:
    Job.objects.filter(id=job.id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))


def test_a_stale_job_is_requeued_by_itself_and_sent_again(settings, sent) -> None:
    settings.JOB_STALE_AFTER_SECONDS, settings.JOB_MAX_ATTEMPTS = 60, 3
    stale, fresh = _job(), _job()
    for job in (stale, fresh):
        services.claim_job(job.id)
    services.record_progress(stale.id, done=4, total=10, checkpoint={"step": 4})
    _stale(stale)
    assert services.heal_stale_jobs() == {"requeued": 1, "failed": 0}
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, stale.done, stale.checkpoint) == (JobStatus.QUEUED, 4, {"step": 4})
    assert "re-queued automatically (attempt 2 of 3)" in stale.error
    assert sent == [stale.id]
    assert fresh.status == JobStatus.RUNNING
    assert services.heal_stale_jobs() == {"requeued": 0, "failed": 0}  # a second sweep changes nothing


def test_past_the_attempt_limit_a_stale_job_fails_with_the_reason(settings, sent) -> None:
    settings.JOB_STALE_AFTER_SECONDS, settings.JOB_MAX_ATTEMPTS = 60, 2
    job = _job()
    for _ in range(2):  # claimed, died, re-queued, claimed again, died again
        assert services.claim_job(job.id)
        _stale(job)
        services.heal_stale_jobs()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "after 2 attempts" in job.error
    assert "heartbeat" in job.error
    assert sent == [job.id]


def test_a_stale_job_of_an_unregistered_kind_is_failed_not_restarted(settings) -> None:
    settings.JOB_STALE_AFTER_SECONDS = 60
    job = services.create_job(kind=JobKind.TRAIN_DEMO_SAE, title="t")
    services.claim_job(job.id)
    _stale(job)
    assert services.fail_stale_jobs() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "cannot resume by itself" in job.error


def test_a_run_superseded_by_a_requeue_stops_without_touching_the_job(settings, sent) -> None:
    settings.JOB_STALE_AFTER_SECONDS = 60
    job = _job()
    services.claim_job(job.id)
    with services.job_outcome(job.id):  # the old run, whose heartbeat was lost
        _stale(job)
        services.heal_stale_jobs()
        assert services.claim_job(job.id)  # the new run owns it now
        services.record_progress(job.id, done=1)  # raises JobSuperseded: job_outcome swallows it
        pytest.fail("record_progress should have stopped the superseded run")
    job.refresh_from_db()
    assert (job.status, job.generation, job.done) == (JobStatus.RUNNING, 2, 0)
    services.finish_job(job.id, result={"ok": True})  # outside the old run: the new run finishes
    job.refresh_from_db()
    assert job.status == JobStatus.DONE


@pytest.mark.django_db(transaction=True)
def test_job_outcome_beats_while_one_long_step_runs(settings) -> None:
    settings.JOB_HEARTBEAT_SECONDS = 0.2
    job = _job()
    services.claim_job(job.id)
    job.refresh_from_db()
    first = job.heartbeat_at
    with services.job_outcome(job.id):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if Job.objects.get(id=job.id).heartbeat_at > first:
                break
        services.finish_job(job.id)
    job.refresh_from_db()
    assert job.heartbeat_at > first
    assert job.status == JobStatus.DONE


def test_every_job_kind_with_a_worker_task_is_registered() -> None:
    from neuronpedia.jobs import registry  # noqa: PLC0415

    kinds = set(registry.registered())
    assert {JobKind.NOOP, JobKind.IMPORT_SOURCE, JobKind.EXPORT_SOURCE, JobKind.GENERATE_DASHBOARDS,
            JobKind.AUTOINTERP_BATCH, JobKind.GENERATE_GRAPH, JobKind.TRAIN_TRANSCODERS} <= kinds


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


def test_follow_job_writes_each_new_progress_line_and_returns_the_finished_job(monkeypatch) -> None:
    job = Job.objects.create(kind=JobKind.NOOP, title="followed", status=JobStatus.RUNNING, done=1, total=3)
    steps = iter([
        {"done": 1},  # unchanged: no new line
        {"done": 2, "checkpoint": {"message": "layer 2"}},
        {"done": 3, "status": JobStatus.DONE},
    ])

    def advance(_seconds: float) -> None:
        Job.objects.filter(pk=job.pk).update(**next(steps))

    monkeypatch.setattr(services.time, "sleep", advance)
    lines: list[str] = []
    finished = services.follow_job(job.pk, lines.append, interval=0.0)
    assert finished.status == JobStatus.DONE
    assert lines == ["RUNNING 1/3", "RUNNING 2/3 layer 2", "DONE 3/3 layer 2"]
