"""Explanations in a real browser: score and method beside every explanation (feature page, source
table, search results, steering picker), the type pages and the LLM keys page."""

from __future__ import annotations

import pytest

from autointerp import services
from autointerp.explainers import OFFLINE
from autointerp.llm import LOCAL_MODEL
from tests import factories
from tests.autointerp.test_offline_analysis import CITIES, dateline
from tests.browser.conftest import screenshot
from tests.browser.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_score_and_method_shown_wherever_an_explanation_is(live_server, page, django_user_model) -> None:
    catalog = factories.make_catalog()
    feature = factories.make_feature(catalog["source"], 7)
    for i, city in enumerate(CITIES * 2):
        ex = dateline(city, "May", str(i + 1))
        factories.make_activation(feature, list(ex.tokens), [v * (1 - i / 40) for v in ex.values])
    explanation = services.generate_explanation(feature=feature, explainer_type=OFFLINE, model=LOCAL_MODEL)
    shown = f"score {explanation.score:.2f}"
    user = django_user_model.objects.create_user("ann", "a@example.com", "pw-ann-1234")
    explanation.triggered_by = user
    explanation.save()
    log_in(page, live_server, user)

    page.goto(live_server.url + feature.get_absolute_url())
    meta = page.locator("#explanations .expl-meta").first
    assert shown in meta.inner_text()
    assert "token-analysis" in meta.inner_text()
    assert page.locator(".delete-explanation").count() == 1  # ann generated it
    page.locator("#autointerp summary").click()
    screenshot(page, "explanation-feature-page")

    page.goto(f"{live_server.url}/{catalog['source'].model_id}/{catalog['source'].name}/")
    row = page.locator("#browser tr", has_text=explanation.description)
    assert shown in row.inner_text()
    screenshot(page, "explanation-source-table")

    page.goto(f"{live_server.url}/search-explanations?q=AP+news+agency")
    hit = page.locator(".hit", has_text=explanation.description).first
    assert shown in hit.inner_text()
    screenshot(page, "explanation-search")

    page.goto(f"{live_server.url}/steer?model={catalog['source'].model_id}"
              f"&features={catalog['source'].name}:7:10")
    assert shown in page.locator("#steer-features").inner_text()

    page.goto(f"{live_server.url}/explanation-types/")
    assert "np_offline" in page.locator("#explanation-types").inner_text()
    screenshot(page, "explanation-types")

    page.goto(f"{live_server.url}/accounts/llm-keys/")
    page.fill("input[name=value]", "sk-browser-test-key-9876")
    page.locator("#add-provider-key button").click()
    assert "…9876" in page.locator("#provider-keys").inner_text()
    assert "sk-browser-test-key-9876" not in page.content()
    screenshot(page, "llm-keys")
