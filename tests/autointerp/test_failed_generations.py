"""Issue 16: a failed explanation generation started from the feature page says why, where the page shows
it (the form's output area, then the job status it polls), and stores nothing half-done: an unknown
explainer type, no LLM key, a provider error, a feature with no examples."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from autointerp.explainers import NP_MAX_ACT_LOGITS
from features.models import Explanation, ExplanationScore
from neuronpedia.jobs.models import Job, JobStatus
from tests import factories
from tests.autointerp.conftest import error_reply

pytestmark = pytest.mark.django_db


def _post(client: Client, feature: Any, **data: str) -> Any:
    url = f"/{feature.source.model_id}/{feature.source.name}/{feature.index}/autointerp"
    return client.post(url, {"action": "explain", **data}, HTTP_HX_REQUEST="true")


def _status_fragment(client: Client, job: Job) -> str:
    response = client.get(f"/jobs/{job.pk}/status/", HTTP_HX_REQUEST="true")
    assert response.status_code == 286  # htmx: a finished job's fragment stops the polling
    return response.content.decode()


def _nothing_stored(feature: Any) -> None:
    assert not Explanation.objects.filter(feature=feature).exists()
    assert not ExplanationScore.objects.filter(explanation__feature=feature).exists()


@pytest.fixture
def signed_in(client: Client, alice: Any) -> Client:
    client.force_login(alice)
    return client


def test_an_unknown_explainer_type_is_said_in_the_form_and_starts_nothing(
        signed_in: Client, cat_feature: Any) -> None:
    response = _post(signed_in, cat_feature, explainer_type="gpt-magic", model="fake-gpt")
    assert response.status_code == 200  # htmx swaps only 2xx: the message lands under the form
    body = response.content.decode()
    assert "Cannot start: unknown explainer &#x27;gpt-magic&#x27;" in body
    assert 'role="alert"' in body
    assert not Job.objects.exists()
    _nothing_stored(cat_feature)
    plain = signed_in.post(f"/{cat_feature.source.model_id}/{cat_feature.source.name}/{cat_feature.index}"
                           "/autointerp", {"action": "explain", "explainer_type": "gpt-magic"})
    assert plain.status_code == 400


def test_no_llm_key_is_said_before_any_job_exists(
        signed_in: Client, cat_feature: Any, settings: Any) -> None:
    settings.NP_OPENAI_API_KEY = settings.NP_OPENAI_BASE_URL = ""
    response = _post(signed_in, cat_feature, explainer_type=NP_MAX_ACT_LOGITS, model="gpt-4o-mini")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Cannot start: no LLM provider configured" in body
    assert not Job.objects.exists()
    _nothing_stored(cat_feature)
    # an offline explainer with a remote model is refused the same way
    response = _post(signed_in, cat_feature, explainer_type="np_offline", model="gpt-4o-mini")
    assert "runs with smollm2-135m-instruct only" in response.content.decode()


def _run_queued_job() -> Job:
    """What the Celery worker does with the job the page queued."""
    from autointerp.tasks import autointerp_batch_task

    job = Job.objects.get()
    assert job.status == JobStatus.QUEUED
    autointerp_batch_task(job.pk)
    job.refresh_from_db()
    return job


def test_a_provider_error_fails_the_job_with_the_providers_reason(
        signed_in: Client, cat_feature: Any, fake_llm: Any) -> None:
    fake_llm.reply_sequence(*[error_reply(401, "Incorrect API key provided: sk-t***1234")] * 3)
    response = _post(signed_in, cat_feature, explainer_type=NP_MAX_ACT_LOGITS, model="fake-gpt")
    assert response.status_code == 200
    assert 'data-status="QUEUED"' in response.content.decode()
    job = _run_queued_job()
    assert job.status == JobStatus.FAILED
    fragment = _status_fragment(signed_in, job)
    assert 'data-status="FAILED"' in fragment
    assert "Incorrect API key provided" in fragment
    assert "sk-test-secret-key-1234" not in fragment
    _nothing_stored(cat_feature)


def test_a_feature_without_examples_fails_and_says_so(
        signed_in: Client, catalog: dict[str, Any], fake_llm: Any) -> None:
    empty = factories.make_feature(catalog["source"], 99)
    _post(signed_in, empty, explainer_type=NP_MAX_ACT_LOGITS, model="fake-gpt")
    job = _run_queued_job()
    assert job.status == JobStatus.FAILED, (job.status, job.error, job.result)
    fragment = _status_fragment(signed_in, job)
    assert "failed for every item (1)" in fragment
    assert "example" in job.error.lower()
    assert not fake_llm.chat_requests  # nothing to ask the LLM about
    _nothing_stored(empty)
