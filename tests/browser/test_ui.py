"""Real-browser tests of the pages (headless Chromium): the feature page's interactions, the source
page's UMAP, semantic search, lists, accounts. Screenshots go to test-artifacts/screenshots/
(`bin/np screenshots` refreshes docs/screenshots/)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from features.models import ListItem
from tests.browser.conftest import screenshot
from tests.browser.helpers import log_in
from tests.ui.data import make_rich_catalog
from tests.ui.test_search_steer import FakeEmbedder, _vec

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def rich(alice: Any) -> dict[str, Any]:
    catalog = make_rich_catalog(owner=alice)
    catalog["release"].featured = True
    catalog["release"].save()
    return catalog


def test_home_jump_box_and_random(live_server, page, rich) -> None:
    page.goto(live_server.url + "/")
    screenshot(page, "home")
    # The jump box defaults to a model with a live worker; a session-long test worker elsewhere in the
    # suite registers one (tiny-api) every second, so name the model rather than rely on the default.
    page.select_option("#jump-model", "gpt2-small")
    page.select_option("#jump-source", "6-res-jb")
    page.fill("#jump-index", "201")
    page.click("#jump-form button")
    page.wait_for_url(re.compile(r"/gpt2-small/6-res-jb/201$"))
    page.goto(live_server.url + "/")
    page.click("#random-feature")
    # any listed source with features may be picked (the session-long worker's model included)
    page.wait_for_url(re.compile(r"/(gpt2-small/6-res-jb/20[01]|tiny-api/[\w.-]+/\d+)$"))


def test_feature_page_presets_bins_hover_breaks_and_score_dialog(live_server, page, rich) -> None:
    page.goto(live_server.url + "/gpt2-small/6-res-jb/200")
    long_row = page.locator('.activation[data-max-index="30"]')
    hidden = long_row.locator(".tok.out")
    assert hidden.count() == 14  # Snippet ±16 around token 30 of 40 hides tokens 0..13
    page.click('button[data-preset="stacked"]')
    assert hidden.count() == 40 - 11
    page.click('button[data-preset="full"]')
    assert hidden.count() == 0
    # bin groups: Top and the first interval are open, the last one opens on click
    last_bin = page.locator('details[data-bin="bin-1"]')
    assert last_bin.get_attribute("open") is None
    assert not last_bin.locator(".activation").first.is_visible()
    last_bin.locator("summary").click()
    assert last_bin.locator(".activation").first.is_visible()
    assert "50% of activations" in last_bin.locator("summary").inner_text()
    # hover a token: the tooltip shows the token and its value
    page.locator('.tok[title="9.500"]').hover()
    tip = page.locator("#tok-tip")
    tip.wait_for(state="visible")
    assert '" France"' in tip.inner_text()
    assert "9.500" in tip.inner_text()
    # line breaks
    display = 'e => getComputedStyle(e).display'
    assert page.locator(".lb").first.evaluate(display) != "none"
    page.uncheck("#show-breaks")
    assert page.locator(".lb").first.evaluate(display) == "none"
    # score details dialog
    page.click("button.score")
    dialog = page.locator("dialog.score-dialog")
    dialog.wait_for(state="visible")
    assert "I like turtles" in dialog.inner_text()
    dialog.locator("button", has_text="Close").click()
    # the lazily loaded panels: no worker for gpt2-small, lists for anonymous users
    page.locator("#no-worker").wait_for()
    assert page.locator("#test-text-form textarea").is_disabled()
    page.locator("#lists >> text=Sign in").wait_for()
    page.click('button[data-preset="snippet"]')
    screenshot(page, "feature")


def test_add_to_list_from_the_feature_page(live_server, page, rich, alice) -> None:
    log_in(page, live_server, alice)
    page.goto(live_server.url + "/gpt2-small/6-res-jb/200")
    form = page.locator("form.add-to-list")
    form.locator("input[name=note]").fill("the French one")
    form.locator("button").click()
    page.locator("#added-msg").wait_for()
    assert page.locator(".lists-containing a", has_text="geography").count() == 1
    assert ListItem.objects.get(feature=rich["feature"]).description == "the French one"
    # the list page shows both mini-dashboards; remove one with htmx
    page.goto(live_server.url + f"/lists/{rich['list'].pk}/")
    assert page.locator(".mini").count() == 2
    page.locator(f'.mini[data-feature="{rich["neighbour"].pk}"] .remove-form button').click()
    page.wait_for_function("document.querySelectorAll('.mini').length === 1")
    screenshot(page, "list")


def test_create_list_from_the_lists_page(live_server, page, rich, alice) -> None:
    log_in(page, live_server, alice)
    page.goto(live_server.url + "/lists/")
    page.click("text=New list")
    page.fill("#id_name", "my picks")
    page.click("#list-form button")
    page.wait_for_url(re.compile(r"/lists/\d+/$"))
    page.select_option("select[name=model]", "gpt2-small")  # pickers since issue 18
    page.select_option("select[name=source]", "6-res-jb")
    page.fill("input[name=index]", "200")
    page.click("form.add-feature button")
    page.locator(".mini").wait_for()
    assert "mentions of France and Paris" in page.locator(".mini").inner_text()


def _umap_cloud(source: Any) -> None:
    """300 more features in 6 clusters, some explained, so the map looks like a real one."""
    import random

    from features.models import Explanation, Feature

    rng = random.Random(0)
    topics = ["numbers", "code", "names", "places", "verbs", "punctuation"]
    centres = [(rng.uniform(-8, 8), rng.uniform(-8, 8)) for _ in topics]
    features = Feature.objects.bulk_create([
        Feature(source=source, index=1000 + i, max_act_approx=rng.uniform(1, 9), frac_nonzero=0.01,
                umap_x=centres[i % 6][0] + rng.gauss(0, 1.3), umap_y=centres[i % 6][1] + rng.gauss(0, 1.3),
                umap_cluster=i % 6) for i in range(300)])
    Explanation.objects.bulk_create([Explanation(feature=f, description=f"{topics[i % 6]} #{i}")
                                     for i, f in enumerate(features) if i % 3 == 0])


def test_source_page_umap_hover_search_and_click(live_server, page, rich) -> None:
    _umap_cloud(rich["source"])
    page.goto(live_server.url + "/gpt2-small/6-res-jb/")
    page.locator("#umap-card").scroll_into_view_if_needed()
    dot = page.locator('#umap-svg circle[data-i="201"]')
    dot.wait_for()
    assert page.locator("#eval-core, .eval-core").count() == 1
    dot.hover()
    tip = page.locator("#umap-tip")
    tip.wait_for(state="visible")
    assert "Italian cities" in tip.inner_text()
    screenshot(page, "source")
    page.fill("#umap-search", "france")
    assert page.locator("#umap-svg circle.hit").count() == 1
    assert page.locator("#umap-count").inner_text() == "1 match"
    page.fill("#umap-search", "")
    dot.click()
    page.wait_for_url(re.compile(r"/gpt2-small/6-res-jb/201$"))


def test_search_explanations_page(live_server, page, rich, monkeypatch) -> None:
    from features.models import Explanation

    Explanation.objects.filter(pk=rich["explanation"].pk).update(embedding=_vec(True).tolist(),
                                                                  embedder="all-MiniLM-L6-v2")
    Explanation.objects.filter(feature=rich["neighbour"]).update(embedding=_vec(False).tolist(),
                                                                 embedder="all-MiniLM-L6-v2")
    monkeypatch.setattr("autointerp.embedders.get_embedder", lambda name, user=None: FakeEmbedder())
    page.goto(live_server.url + "/search-explanations")
    page.fill("input[name=q]", "cities in France")
    page.click("#expl-search-form button")
    page.locator("#embedder-used").wait_for()
    assert "all-MiniLM-L6-v2" in page.locator("#embedder-used").inner_text()
    first = page.locator("ol.hits .hit").first
    assert "mentions of France and Paris" in first.inner_text()
    assert "q=cities" in page.url  # hx-push-url keeps the search shareable
    screenshot(page, "search")
    first.locator("a").click()
    page.wait_for_url(re.compile(r"/gpt2-small/6-res-jb/200$"))


def test_steer_page_picks_features_by_search_and_says_when_no_worker(live_server, page, rich,
                                                                      monkeypatch) -> None:
    from features.models import Explanation

    Explanation.objects.filter(pk=rich["explanation"].pk).update(embedding=_vec(True).tolist(),
                                                                  embedder="all-MiniLM-L6-v2")
    monkeypatch.setattr("autointerp.embedders.get_embedder", lambda name, user=None: FakeEmbedder())
    page.goto(live_server.url + "/steer?model=gpt2-small")
    assert page.locator("#no-features").is_visible()
    assert page.locator("#steer-no-worker").is_visible()
    page.fill("#feature-search", "France")
    page.locator("#feature-search-results .add-steer-feature").first.click()
    row = page.locator('#steer-features tr[data-index="200"]')
    assert row.locator(".strength").input_value() == "9.5"  # max activation as the default strength
    page.fill("#steer-prompt", "Hello")
    page.click("#steer-run")
    page.wait_for_function(
        "document.getElementById('steer-status').textContent.includes('Live inference is offline')")
    assert page.locator("#share").is_hidden()


def test_sign_up_then_api_key_is_shown_once(live_server, page, db) -> None:
    page.goto(live_server.url + "/accounts/signup/")
    page.fill("#id_username", "dora")
    page.fill("#id_password1", "a-Long-pass-91")
    page.fill("#id_password2", "a-Long-pass-91")
    page.click("#signup-form button")
    page.wait_for_url(re.compile(r"/accounts/api-keys/$"))
    page.click("#create-key button")
    raw = page.locator("#raw-key").inner_text()
    assert raw.startswith("np_")
    prefix = raw[:10]
    page.goto(live_server.url + "/accounts/api-keys/")
    assert page.locator("#raw-key").count() == 0
    assert raw not in page.content()
    assert prefix in page.locator("#keys").inner_text()


def test_unknown_feature_is_the_404_page(live_server, page, rich) -> None:
    response = page.goto(live_server.url + "/gpt2-small/6-res-jb/999")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
