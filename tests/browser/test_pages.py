from __future__ import annotations

import re

import pytest

from neuronpedia.jobs import services
from neuronpedia.jobs.models import JobKind
from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_job_page_progress_bar_updates_live_until_done(live_server, page, django_user_model) -> None:
    log_in(page, live_server, django_user_model.objects.create_user("jo", "jo@example.com", "pw-jo-1234"))
    job = services.create_job(kind=JobKind.NOOP, title="browser check",
                              requested_by=django_user_model.objects.get(username="jo"))
    services.claim_job(job.id)
    services.record_progress(job.id, done=1, total=4)
    page.goto(f"{live_server.url}/jobs/{job.id}/")
    progress = page.locator("progress")
    assert progress.get_attribute("value") == "25.0"
    services.record_progress(job.id, done=3, total=4)
    page.wait_for_function("document.querySelector('progress').value == 75")
    services.finish_job(job.id, result={"steps": 4})
    page.locator("[data-status=DONE]").wait_for()
    assert page.locator(f"#job-{job.id}").get_attribute("hx-get") is None  # polling stopped


def test_feature_page_renders_tokens_and_admin_login_works(live_server, page,
                                                           django_user_model) -> None:
    catalog = factories.make_catalog()
    django_user_model.objects.create_superuser("boss", "b@example.com", "pw-boss-123")
    page.goto(live_server.url + catalog["feature"].get_absolute_url())
    assert page.locator(".activation").count() == 2
    assert page.locator(".activation .toks").first.inner_text().startswith("The capital of France")
    assert page.locator(".tok[title='9.500']").inner_text() == " France"
    screenshot(page, "feature-page")
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-boss-123")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))
    assert page.get_by_role("link", name="Features", exact=True).count() >= 1
