"""With the job queue's broker (Redis) unreachable, starting a job answers normally: the job is FAILED at
once with the reason (nothing ran) instead of the request failing with a server error after its row was
committed, and *Resume* sends it once the broker is back. The broker is made unreachable for real: the
Celery app publishes to a closed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from features.models import Explanation
from features.services import create_human_explanation
from inference.dashboards import start_dashboard_job
from neuronpedia.celery import app
from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.lib.jobs import JobStatus
from tests import factories
from tests.features.test_browse_pages import make_demo_like


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket closes


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Celery publishes to a port where nothing listens: a fresh connection pool and producer pool for the
    dead URL (Celery caches both on first use), the app's own pools put back afterwards."""
    saved = app._pool, app.amqp._producer_pool
    monkeypatch.setattr(app.conf, "broker_url", f"redis://127.0.0.1:{_closed_port()}/0")
    app._pool = app.amqp._producer_pool = None
    yield
    app._pool, app.amqp._producer_pool = saved


def test_a_job_started_while_the_broker_is_down_fails_with_the_reason_and_resumes_later(
        client: Any, admin_user: Any, broker_down: None, monkeypatch: pytest.MonkeyPatch,
        django_capture_on_commit_callbacks: Any) -> None:
    make_demo_like()
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/tiny-lm/similar-features/compute")
    job = Job.objects.get(kind=JobKind.COMPUTE_SIMILAR)
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.id}/"
    assert job.status == JobStatus.FAILED
    assert "could not send the job to its queue" in job.error
    assert "Resume it once the queue (Redis) is reachable again" in job.error
    page = client.get(f"/jobs/{job.id}/").content.decode()
    assert "could not send the job to its queue" in page
    assert 'id="job-resume"' in page
    # the broker is back: Resume sends it (the send itself is what the real broker would receive)
    sent: list[int] = []
    from neuronpedia.jobs import registry  # noqa: PLC0415

    monkeypatch.setitem(registry._TYPES, JobKind.COMPUTE_SIMILAR,
                        registry.JobType(JobKind.COMPUTE_SIMILAR, lambda j: sent.append(j.id)))
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.resume_job(job.id)
    job.refresh_from_db()
    assert (job.status, job.error, sent) == (JobStatus.QUEUED, "", [job.id])


def test_a_worker_queue_job_fails_the_same_way(db: None, broker_down: None,
                                               django_capture_on_commit_callbacks: Any) -> None:
    """Dashboards go to the model's inference queue through the same registry."""
    source = factories.make_source(factories.make_model("tiny-down"))
    with django_capture_on_commit_callbacks(execute=True):
        job = start_dashboard_job(source=source)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "could not send the job to its queue" in job.error


def test_a_person_s_explanation_is_kept_when_its_score_cannot_be_queued(
        alice: Any, broker_down: None, django_capture_on_commit_callbacks: Any) -> None:
    source = factories.make_source(factories.make_model("tiny-down"))
    feature = factories.make_feature(source, index=0)
    with django_capture_on_commit_callbacks(execute=True):
        explanation = create_human_explanation(user=alice, feature=feature, text="the word 'the'")
    assert Explanation.objects.filter(pk=explanation.pk, score__isnull=True, method="human").exists()
