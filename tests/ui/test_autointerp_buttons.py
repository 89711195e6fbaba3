"""The feature page's autointerp form starts the same batch job as the CLI, for one feature."""

from __future__ import annotations

from typing import Any

import pytest

from neuronpedia.jobs.models import Job, JobKind

pytestmark = pytest.mark.django_db
URL = "/gpt2-small/6-res-jb/200/autointerp"


def test_signed_in_users_see_the_form_and_anonymous_users_do_not(client: Any, rich: dict, alice: Any) -> None:
    assert b'id="autointerp"' not in client.get("/gpt2-small/6-res-jb/200").content
    client.force_login(alice)
    body = client.get("/gpt2-small/6-res-jb/200").content.decode()
    assert 'id="autointerp"' in body
    assert "Generate explanation" in body


def test_generate_starts_an_explain_job_for_this_feature(client: Any, rich: dict, alice: Any,
                                                         django_capture_on_commit_callbacks: Any) -> None:
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(URL, {"action": "explain", "explainer_type": "np_max-act-logits",
                                     "model": "smollm2-135m-instruct"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    job = Job.objects.get(kind=JobKind.AUTOINTERP_BATCH)
    assert job.params["feature_ids"] == [rich["feature"].pk]
    assert (job.params["action"], job.params["model"]) == ("explain", "smollm2-135m-instruct")
    assert job.requested_by == alice
    assert len(callbacks) == 1  # enqueued after commit
    assert f"/jobs/{job.pk}/" in response.content.decode()


def test_score_starts_a_score_job_and_plain_posts_redirect_to_the_job(client: Any, rich: dict,
                                                                      alice: Any) -> None:
    client.force_login(alice)
    response = client.post(URL, {"action": "score", "score_type": "eleuther_embedding",
                                 "explainer_type": "np_max-act-logits", "model": "gpt-4o-mini"})
    job = Job.objects.get(kind=JobKind.AUTOINTERP_BATCH)
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert job.params["score_types"] == ["eleuther_embedding"]


def test_anonymous_and_bad_requests_are_refused(client: Any, rich: dict, alice: Any) -> None:
    assert client.post(URL, {"action": "explain"}).status_code == 403
    client.force_login(alice)
    assert client.post(URL, {"action": "explain", "explainer_type": "nope"}).status_code == 400
    assert client.post(URL, {"action": "score", "score_type": "nope"}).status_code == 400
    assert not Job.objects.exists()
