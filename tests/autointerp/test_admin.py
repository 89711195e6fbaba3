"""The admin form starts a batch job and redirects to its page."""

from __future__ import annotations

from typing import Any

import pytest

from neuronpedia.jobs.models import Job

pytestmark = pytest.mark.django_db


def test_admin_batch_form_redirects_to_the_job(
    client: Any,
    admin_user: Any,
    catalog: dict,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from autointerp.tasks import autointerp_batch_task

    monkeypatch.setattr(autointerp_batch_task, "delay", lambda *a: None)
    client.force_login(admin_user)
    assert client.get("/admin/autointerp/providerkey/batch/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/autointerp/providerkey/batch/",
            {
                "source": catalog["source"].pk,
                "action": "explain",
                "explainer_type": "np_max-act-logits",
                "model": "smollm2-135m-instruct",
                "concurrency": 2,
            },
        )
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert job.kind == "autointerp_batch"
    assert job.requested_by == admin_user


def test_admin_batch_page_needs_staff(client: Any, alice: Any) -> None:
    client.force_login(alice)
    assert client.get("/admin/autointerp/providerkey/batch/").status_code == 302


def test_admin_batch_form_says_why_it_cannot_start(
        client: Any, admin_user: Any, catalog: dict, settings: Any) -> None:
    """Issue 16: an LLM explainer with no provider configured is refused on the form (not a 500), and no
    job is created."""
    settings.NP_OPENAI_API_KEY = settings.NP_OPENAI_BASE_URL = ""
    client.force_login(admin_user)
    response = client.post("/admin/autointerp/providerkey/batch/", {
        "source": catalog["source"].pk, "action": "explain", "explainer_type": "np_max-act-logits",
        "model": "gpt-4o-mini", "concurrency": 2})
    assert response.status_code == 200
    assert "no LLM provider configured" in response.content.decode()
    assert not Job.objects.exists()
