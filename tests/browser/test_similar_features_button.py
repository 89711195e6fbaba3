"""The cross-source similar features job in headless Chromium (issue 18): a staff user starts it from the
feature page's empty similar card, lands on its job page, which shows the result when the job ends, and the
card then lists the neighbours; the model page has the same button for staff only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from features.similar_jobs import run_similar_job
from neuronpedia.jobs import registry
from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import Job, JobKind
from tests.browser.conftest import SCREENSHOTS, screenshot
from tests.browser.helpers import log_in
from tests.features.test_browse_pages import make_demo_like
from tests.features.test_similar_job import PERM, give_weights

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_start_the_similar_features_job_from_the_feature_page(
        live_server, page, admin_user, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    give_weights(tmp_path, make_demo_like()["sources"])
    sent: list[int] = []  # the job is run below, in this process: no broker message
    monkeypatch.setitem(registry._TYPES, JobKind.COMPUTE_SIMILAR,
                        registry.JobType(JobKind.COMPUTE_SIMILAR, lambda job: sent.append(job.id)))
    page.goto(live_server.url + "/tiny-lm/")
    assert page.locator("#similar-compute").count() == 0  # anonymous: no button
    log_in(page, live_server, admin_user)
    page.goto(live_server.url + "/tiny-lm/3-res-demo/5")
    page.locator("#similar-empty").wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#cross-similar").screenshot(path=str(SCREENSHOTS / "similar-empty-card.png"))
    page.locator("#similar-compute").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job = Job.objects.get(kind=JobKind.COMPUTE_SIMILAR)
    assert sent == [job.id]
    assert page.locator("h1").inner_text() == f"Compute cross-source similar features #{job.id}"
    assert jobs.claim_job(job.id)
    run_similar_job(job.id)  # what the worker does; the page polls and shows the result
    page.locator("#similar-result").wait_for()
    assert page.locator('[data-status="DONE"]').is_visible()
    screenshot(page, "similar-job")
    page.goto(live_server.url + "/tiny-lm/3-res-demo/5")
    page.locator(f'#cross-similar a[href="/tiny-lm/1-res-demo/{PERM[5]}"]').wait_for()
    assert page.locator("#similar-empty").count() == 0
    page.locator("#cross-similar").screenshot(path=str(SCREENSHOTS / "similar-card.png"))
    page.goto(live_server.url + "/tiny-lm/")
    assert page.locator("#similar-features #similar-compute").is_visible()
    screenshot(page, "model-staff")
