"""Issue 16 in a real browser: asking for an explanation that cannot be made (an LLM with no key) says why
under the feature page's autointerp form, and no job starts."""

from __future__ import annotations

import pytest

from neuronpedia.jobs.models import Job
from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_generation_that_cannot_start_says_why_on_the_feature_page(
        live_server, page, django_user_model, settings) -> None:
    settings.NP_OPENAI_API_KEY = settings.NP_OPENAI_BASE_URL = ""
    catalog = factories.make_catalog()
    feature = factories.make_feature(catalog["source"], 7)
    factories.make_activation(feature, ["The", " cat", " sat"], [0.0, 3.0, 0.5])
    user = django_user_model.objects.create_user("ann", "a@example.com", "pw-ann-1234")
    log_in(page, live_server, user)

    page.goto(live_server.url + feature.get_absolute_url())
    page.locator("#autointerp summary").click()
    page.select_option("#autointerp select[name=explainer_type]", "np_max-act-logits")
    page.fill("#autointerp input[name=model]", "gpt-4o-mini")
    page.locator("#autointerp button[value=explain]").click()
    alert = page.locator("#autointerp-out [role=alert]")
    alert.wait_for(timeout=10_000)
    assert "Cannot start: no LLM provider configured" in alert.inner_text()
    screenshot(page, "autointerp-cannot-start")
    assert not Job.objects.exists()
