"""Browse pages in headless Chromium (issue 18): the comparison table sorts and filters and its plots draw,
the source-set page's layer filter, UMAP legend and sort work, release and model pages, and the feature
page's extras panel with its embed options builder and the embed honouring them."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot
from tests.features.test_browse_pages import make_demo_like

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_compare_page_sorts_filters_and_plots(live_server, page) -> None:
    demo = make_demo_like()
    from tests import factories

    factories.make_source(demo["model"], layer=2, set_name="other", num_features=4)
    # scoped to this model: a session-long test worker re-registers its own public model every second
    page.goto(live_server.url + f"/compare?model={demo['model'].id}")
    assert page.locator("#f-model").input_value() == demo["model"].id
    rows = page.locator("#compare-table tbody tr:visible")
    assert rows.count() == 3
    total = page.locator("#compare-table tbody tr").count()  # every public source, shown or filtered out
    assert page.locator("#scatter-svg circle").count() == 2  # the unmeasured source has no point
    page.locator('th[data-key="explained_variance"]').click()
    assert rows.first.get_attribute("data-source") == "3-res-demo"  # 0.84 first (descending)
    page.locator('th[data-key="explained_variance"]').click()
    assert rows.first.get_attribute("data-source") == "1-res-demo"
    assert rows.last.get_attribute("data-source") == "2-other"  # unmeasured last either way
    page.select_option("#f-set", "res-demo")
    assert rows.count() == 2
    assert page.locator("#compare-count").inner_text() == f"2 of {total} sources"
    page.select_option("#layer-metric", "l0")
    assert page.locator("#layer-svg polyline").count() == 1
    assert page.locator("#layer-svg circle").count() == 2
    page.select_option("#f-set", "")
    page.check("#f-measured")
    assert rows.count() == 2
    screenshot(page, "compare")


def test_source_set_page_layers_umap_and_browser(live_server, page) -> None:
    make_demo_like()
    page.goto(live_server.url + "/tiny-lm/res-demo")
    page.locator("#set-umap-svg").wait_for()
    assert page.locator("#set-umap-svg circle").count() == 16
    page.locator('#set-umap-legend input[data-source="1-res-demo"]').uncheck()
    assert page.locator("#set-umap-count").inner_text() == "8 features"
    page.locator('#set-umap-legend input[data-source="1-res-demo"]').check()
    links = page.locator("#set-browser tbody a")
    assert links.first.inner_text() == "1-res-demo/0"
    page.locator('#set-browser input[name="layer"][value="1"]').uncheck()  # htmx reloads the browser
    page.wait_for_function("Array.from(document.querySelectorAll('#set-browser tbody a'))"
                           ".every(a => a.textContent.startsWith('3-'))")
    assert links.count() == 8
    page.locator("#set-sort-max").click()
    page.wait_for_function("document.querySelector('#set-browser tbody a').textContent === '3-res-demo/7'")
    screenshot(page, "source-set")
    page.select_option("#jump-form select", "3-res-demo")
    page.fill("#jump-form input[name=index]", "5")
    page.locator("#jump-form button").click()
    page.wait_for_url("**/tiny-lm/3-res-demo/5")


def test_release_and_model_pages(live_server, page) -> None:
    make_demo_like()
    page.goto(live_server.url + "/demo-saes")
    assert page.locator("#release-title").inner_text() == "Demo SAEs"
    assert page.locator(".release-set .chip").count() == 2
    screenshot(page, "release")
    page.locator(".release-set h2 a").first.click()
    page.wait_for_url("**/tiny-lm/res-demo")
    page.goto(live_server.url + "/tiny-lm")  # no slash: redirected to the model page
    assert page.url.endswith("/tiny-lm/")
    assert page.locator("#no-worker").is_visible()
    assert page.locator("#layer-grid tbody tr").count() == 2
    screenshot(page, "model")


def test_feature_extras_and_embed_options(live_server, page) -> None:
    demo = make_demo_like()
    from features.models import Feature

    Feature.objects.filter(source=demo["sources"][1], index=5).update(
        correlated_features_indices=[2], correlated_features_pearson=[0.8], neuron_alignment_indices=[11],
        neuron_alignment_values=[0.5], neuron_alignment_l1=[0.2])
    page.goto(live_server.url + "/tiny-lm/3-res-demo/5")
    page.locator("#correlated-features").wait_for()
    assert page.locator("#correlated-features a").inner_text() == "2"
    assert "embed=true" in page.locator("#embed-options-snippet").input_value()
    page.locator('[data-embed-opt="embedplots"]').uncheck()
    page.locator('[data-embed-opt="embedtest"]').uncheck()
    snippet = page.locator("#embed-options-snippet").input_value()
    assert "embedplots=false" in snippet
    assert "embedtest=false" in snippet
    screenshot(page, "feature-extras")
    page.goto(page.locator("#embed-options-preview").get_attribute("href"))
    assert page.locator("#embed-root").is_visible()
    assert page.locator("#activations").is_visible()
    assert not page.locator("#stats").is_visible()
    assert page.locator(".embed-test").count() == 0
    screenshot(page, "feature-embed-options")


def test_set_page_explanation_search_is_scoped_to_the_set(live_server, page) -> None:
    demo = make_demo_like()
    from autointerp.services import embed_explanations
    from features.models import Explanation
    from tests import factories

    one, three = demo["sources"]
    Explanation.objects.create(feature=one.features.get(index=2), description="French cities and towns")
    other = factories.make_source(demo["model"], layer=1, set_name="att-demo", num_features=2)
    Explanation.objects.create(feature=factories.make_feature(other, 0), description="French cities in news")
    embed_explanations(explanations=Explanation.objects.all())  # the real default embedder (MiniLM)
    page.goto(live_server.url + "/tiny-lm/res-demo")
    page.fill("#set-search-form input[name=q]", "cities in France")
    page.locator("#set-search-form button").click()
    hits = page.locator("#set-search-results .hit")
    hits.first.wait_for()
    sources = {hits.nth(n).get_attribute("data-source") for n in range(hits.count())}
    assert sources <= {"1-res-demo", "3-res-demo"}  # never the att-demo set's feature
    assert "French cities and towns" in hits.first.inner_text()
    assert page.url.endswith("/tiny-lm/res-demo")  # results inserted in place
    screenshot(page, "source-set-search")
