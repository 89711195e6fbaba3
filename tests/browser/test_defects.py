"""Issue 18's "Defects found" (items 1-4, 6-10) in a real browser (headless Chromium). Item 5 (evals that
follow SAE-Lens) is tests/dashboards/test_evals_saelens.py; item 3's worker side is
tests/ui/test_bos_per_model.py. Screenshots go to test-artifacts/screenshots/defect-*.png."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from features.models import Eval, Feature
from inference import client as inference
from tests import factories
from tests.browser.conftest import SCREENSHOTS, screenshot
from tests.browser.helpers import log_in
from tests.ui.data import make_rich_catalog

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def rich(alice: Any) -> Any:
    catalog = make_rich_catalog(owner=alice)
    yield catalog
    for name in ("w-gpt2", "w-nobos"):
        inference.unregister_host(name)


def _live(name: str, model: Any, sources: list[str], bos: bool) -> None:
    """Register a worker the way `manage.py inference_worker` does (database row + Redis liveness)."""
    inference.register_host(name=name, model=model, device="cpu", dtype="float32", source_names=sources,
                            info={"prepend_bos": bos})


def _offline_model() -> Any:
    """A model whose id sorts first and that no worker serves (the pickers used to default to it)."""
    model = factories.make_model("aaa-offline", display_name="AAA offline", layers=2, dimension=64)
    factories.make_source(model, layer=0, set_name="res-x")
    return model


# 1 ------------------------------------------------------------------------------------------------
def test_pickers_default_to_a_live_model_and_offline_errors_speak_to_users(live_server, page, rich) -> None:
    _offline_model()
    _live("w-gpt2", rich["model"], ["6-res-jb"], bos=True)
    page.goto(live_server.url + "/")
    assert page.locator("#jump-model").input_value() == "gpt2-small"
    assert "no live inference" in page.locator('#jump-model option[value="aaa-offline"]').inner_text()
    for url, picker in (("/search", "#sa-model"), ("/search-topk", "#tk-model"), ("/steer", "#steer-model")):
        page.goto(live_server.url + url)
        assert page.locator(picker).input_value() == "gpt2-small", url
        assert "offline" in page.locator(f'{picker} option[value="aaa-offline"]').inner_text()
    page.goto(live_server.url + "/search-topk")
    page.select_option("#tk-model", "aaa-offline")
    assert page.locator("#tk-no-worker").is_visible()
    page.fill("#tk-text", "hello world")
    page.click("#topk-form button")
    error = page.locator("#search-error")
    error.wait_for()
    text = error.inner_text()
    assert "Live inference is offline for this model" in text
    assert "manage.py" not in text
    assert text.lower().count("inference") <= 2  # said once, not repeated from the server's message
    screenshot(page, "defect-1-offline-model")


# 2 ------------------------------------------------------------------------------------------------
def test_highlights_scale_per_example_and_skewed_histograms_use_a_log_axis(live_server, page, rich) -> None:
    feature = rich["feature"]
    factories.make_activation(feature, ["an", " outlier", "!"], [0.0, 5200.0, 10.0], bin_min=-1,
                              bin_max=5200, bin_contains=-1)
    feature.max_act_approx = 5200.0
    feature.freq_hist_data_bar_values = [40, 120, 200, 5100]
    feature.freq_hist_data_bar_heights = [12000, 30, 4, 2]
    feature.save()
    page.goto(live_server.url + "/gpt2-small/6-res-jb/200")
    france = page.locator('.activation[data-max="9.5"] .tok.max')
    assert france.inner_text() == " France"
    assert france.get_attribute("style") == "--a:1.000"  # its own max, not 9.5 / 5200
    capital = page.locator('.activation[data-max="9.5"] .tok[title="0.500"]')
    assert capital.get_attribute("style") == "--a:0.053"
    density = page.locator("figure.hist-density")
    assert "log" in (density.get_attribute("class") or "")
    assert "log count" in density.inner_text()
    heights = [float(h) for h in
               density.locator("rect").evaluate_all("rs => rs.map(r => r.getAttribute('height'))")]
    assert min(heights) > 10  # the tail bars (2-30 of 12,000) stay visible
    screenshot(page, "defect-2-scaling")


# 3 ------------------------------------------------------------------------------------------------
def test_ignore_bos_is_offered_only_for_models_with_a_bos(live_server, page, rich) -> None:
    smol = factories.make_model("smol-like", display_name="No-BOS model", layers=2, dimension=64)
    factories.make_source(smol, layer=0, set_name="res-s")
    _live("w-gpt2", rich["model"], ["6-res-jb"], bos=True)
    _live("w-nobos", smol, ["0-res-s"], bos=False)
    page.goto(live_server.url + "/search-topk?model=smol-like")
    assert page.locator("#tk-bos").is_disabled()
    assert not page.locator("#tk-bos").is_checked()
    assert "adds no BOS" in page.locator("#tk-bos-note").inner_text()
    page.select_option("#tk-model", "gpt2-small")
    assert page.locator("#tk-bos").is_enabled()
    page.goto(live_server.url + "/search?model=smol-like")
    assert page.locator("#sa-bos").is_disabled()
    screenshot(page, "defect-3-bos")


# 4 ------------------------------------------------------------------------------------------------
def test_evals_are_one_readable_table_with_units_and_definitions(live_server, page, rich) -> None:
    Eval.objects.filter(source=rich["source"]).delete()
    Eval.objects.create(source=rich["source"], type="core", output={
        "sparsity": {"l0": 32.0},
        "reconstruction_quality": {"explained_variance": 0.812, "mse": 812.5, "cossim": 0.91},
        "model_performance_preservation": {"ce_loss_score": 0.66, "ce_loss_without_sae": 3.1,
                                           "ce_loss_with_sae": 4.2, "ce_loss_with_ablation": 6.4},
        "misc": {"frac_dead": 0.0031, "n_tokens": 204800, "n_eval_tokens": 4096, "l0_dashboard": 31.7,
                 "definitions": "sae_lens.evals"},
        "excluding_attention_sink": {"positions_excluded": 2, "ce_loss_score": 0.98,
                                     "explained_variance": 0.83}})
    Eval.objects.create(source=rich["source"], type="training",
                        output={"explained_variance": 0.777, "dead_fraction": 0.0139, "l0": 32.0})
    page.goto(live_server.url + "/gpt2-small/6-res-jb/")
    table = page.locator("#evals-table")
    heads = table.locator(".group-head").all_inner_texts()
    assert [h.splitlines()[0] for h in heads] == ["Core evals", "Core evals without the attention sink",
                                                  "Training run"]
    core = table.locator('tbody[data-group="core"]')
    ce = core.locator('tr[data-metric="ce_loss_score"]').inner_text()
    assert "CE loss recovered" in ce
    assert "0.660" in ce
    assert "fraction" in ce
    assert "3.1%" not in core.inner_text()
    assert "0.31%" in core.locator('tr[data-metric="frac_dead"]').inner_text()
    sink = table.locator('tbody[data-group="core/excluding_attention_sink"]')
    assert "0.980" in sink.locator('tr[data-metric="ce_loss_score"]').inner_text()
    assert "Not comparable" in sink.inner_text()
    assert "{" not in page.locator("#evals").inner_text()  # no raw dicts
    screenshot(page, "defect-4-evals")


# 6, 7 (live worker) -------------------------------------------------------------------------------
from tests.browser.test_live_inference import live_model  # noqa: E402, F401
from tests.inference.test_worker_e2e import MODEL_ID, SOURCE, worker, worker_config  # noqa: E402, F401


def test_search_results_show_explanations_snippets_density_and_blank_tokens(live_server, page,
                                                                             live_model) -> None:  # noqa: F811
    from features.models import Explanation

    feature = Feature.objects.get(source=live_model, index=1)
    Explanation.objects.create(feature=feature, description="letters of the alphabet")
    factories.make_activation(feature, ["x", "y", " ", "b"], [0.0, 0.0, 1.5, 3.0])
    Feature.objects.filter(source=live_model, index=2).update(frac_nonzero=0.5)  # dense: filtered at 1%
    Feature.objects.filter(source=live_model, index__in=[0, 1, 3]).update(frac_nonzero=0.001)
    page.goto(f"{live_server.url}/search-topk?model={MODEL_ID}&source={SOURCE}")
    page.fill("#tk-text", "a  b")
    page.fill("#tk-numResults" if page.locator("#tk-numResults").count() else "input[name=numResults]", "50")
    page.fill("#tk-density", "1")
    page.click("#topk-form button")
    page.locator("#topk-grid").wait_for()
    tokens = page.locator(".topk-token").all_inner_texts()
    assert "·" in tokens  # the blank space token is visible
    grid = page.locator("#topk-grid")
    assert "letters of the alphabet" in grid.inner_text()
    assert grid.locator(".snippet-toks .tok.max").first.inner_text() == "b"
    assert "density 0.1%" in grid.inner_text()
    assert grid.locator(f'a[href$="/{SOURCE}/2"]').count() == 0  # density 50% > 1%: left out
    page.fill("#tk-density", "100")
    page.click("#topk-form button")
    page.locator(f'#topk-grid a[href$="/{SOURCE}/2"]').first.wait_for()
    screenshot(page, "defect-6-topk")

    page.goto(f"{live_server.url}/search?model={MODEL_ID}")
    page.fill("#sa-text", "a  b")
    page.click("#search-all-form button")
    page.locator("#sa-results").wait_for()
    assert "·" in page.locator("#sa-tokens").inner_text()
    assert "letters of the alphabet" in page.locator("#sa-results").inner_text()
    screenshot(page, "defect-6-search-all")


def test_loading_indicator_while_a_search_runs(live_server, page, live_model) -> None:  # noqa: F811
    seen: list[bool] = []

    def slow(route: Any) -> None:
        time.sleep(1.0)
        route.continue_()

    page.route("**/api/search-topk-by-token", slow)
    page.goto(f"{live_server.url}/search-topk?model={MODEL_ID}&source={SOURCE}")
    page.fill("#tk-text", "abc")
    page.click("#topk-form button")
    spinner = page.locator("#topk-out .loading .spinner")
    spinner.wait_for()
    seen.append(page.locator("#topk-out").get_attribute("aria-busy") == "true")
    page.locator("#topk-grid").wait_for()
    assert seen == [True]
    assert page.locator("#topk-out .loading").count() == 0


# 6: similar features ------------------------------------------------------------------------------
def test_similar_features_show_explanation_and_top_activation(live_server, page, rich) -> None:
    factories.make_activation(rich["neighbour"], ["in", " Rome", " and", " Milan"], [0.0, 2.0, 0.0, 3.0])
    page.goto(live_server.url + "/gpt2-small/6-res-jb/200")
    page.wait_for_function("document.getElementById('similar-list').dataset.snippets === 'loaded'")
    row = page.locator("#similar-list li", has_text="Italian cities")
    assert row.locator(".snippet-toks .tok.max").inner_text() == " Milan"
    assert "no explanation yet" in page.locator("#similar-list").inner_text()  # 202 has none
    page.locator("#similar").screenshot(path=str(SCREENSHOTS / "defect-6-similar.png"))


# 7: autointerp inserts its result -----------------------------------------------------------------
def test_autointerp_result_appears_without_a_reload(live_server, page, django_user_model) -> None:
    from tests.autointerp.test_offline_analysis import CITIES, dateline

    catalog = factories.make_catalog()
    feature = factories.make_feature(catalog["source"], 7)
    for i, city in enumerate(CITIES * 2):
        ex = dateline(city, "May", str(i + 1))
        factories.make_activation(feature, list(ex.tokens), [v * (1 - i / 40) for v in ex.values])
    user = django_user_model.objects.create_user("ann", "a@example.com", "pw-ann-1234")
    log_in(page, live_server, user)
    page.goto(live_server.url + feature.get_absolute_url())
    assert page.locator("#explanation-items .explanation").count() == 0
    page.evaluate("window.__marker = 1")  # survives only if the page is not reloaded
    page.locator("#autointerp summary").click()
    page.click("#autointerp button[value=explain]")
    page.locator("#autointerp-out .autointerp-started").wait_for()
    page.wait_for_timeout(2500)  # a poll or two while the job is still queued: nothing changes
    assert page.locator("#explanation-items .explanation").count() == 0
    from autointerp.tasks import autointerp_batch_task
    from neuronpedia.jobs.models import Job

    autointerp_batch_task(Job.objects.latest("id").pk)  # what the Celery worker does with the message
    page.locator("#explanation-items .explanation").wait_for(timeout=60_000)
    assert page.evaluate("window.__marker") == 1
    assert page.locator("#autointerp-out .autointerp-poll").count() == 1
    screenshot(page, "defect-7-autointerp")


# 8 ------------------------------------------------------------------------------------------------
def test_pickers_replace_free_text_ids_and_unconfigured_embedders_are_disabled(live_server, page, rich,
                                                                               alice, settings) -> None:
    settings.NP_OPENAI_API_KEY = settings.NP_OPENAI_BASE_URL = ""
    _live("w-gpt2", rich["model"], ["6-res-jb"], bos=True)
    page.goto(live_server.url + "/steer")
    assert page.locator("#add-source").evaluate("e => e.tagName") == "SELECT"
    assert page.locator("#add-source option").all_inner_texts() == ["6-res-jb"]
    assert "6-res-jb" not in (page.locator("#steer-form").get_attribute("placeholder") or "")
    page.select_option("#add-source", "6-res-jb")
    page.fill("#add-index", "201")
    page.click("#add-feature-btn")
    page.locator('#steer-features tr[data-index="201"]').wait_for()
    assert "Italian cities" in page.locator("#steer-features").inner_text()
    screenshot(page, "defect-8-steer")

    log_in(page, live_server, alice)
    page.goto(live_server.url + f"/lists/{rich['list'].pk}/")
    page.select_option("select.list-add-model", "gpt2-small")
    page.select_option("select.list-add-source", "6-res-jb")
    page.fill("input[name=index]", "200")
    page.click("form.add-feature button")
    page.locator(".mini", has_text="mentions of France and Paris").wait_for()
    # the form came back in the htmx swap: its pickers are filled again
    page.wait_for_function("document.querySelectorAll('select.list-add-source option').length === 1")
    assert page.locator("select.list-add-model").input_value() == "gpt2-small"

    page.goto(live_server.url + "/search-explanations")
    remote = page.locator('#es-embedder option[value="text-embedding-3-large-256"]')
    assert remote.is_disabled()
    assert "not configured" in remote.inner_text()

    fetched: list[str] = []  # responses from anywhere else (the page's CSP refuses Redoc's CDN logo)
    page.on("response", lambda r: fetched.append(r.url)
            if not r.url.startswith((live_server.url, "blob:", "data:")) else None)
    page.goto(live_server.url + "/api/redoc/")
    page.wait_for_load_state("networkidle")
    page.locator(".redoc-wrap").wait_for()
    assert "fonts.googleapis" not in page.content()
    assert fetched == []


# 9 ------------------------------------------------------------------------------------------------
def test_umap_zoom_pan_legend_hover_and_region_to_list(live_server, page, rich, alice) -> None:
    from tests.browser.test_ui import _umap_cloud

    _umap_cloud(rich["source"])
    log_in(page, live_server, alice)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(live_server.url + "/gpt2-small/6-res-jb/")
    page.locator("#umap-card").scroll_into_view_if_needed()
    svg = page.locator("#umap-svg")
    svg.wait_for()
    assert page.locator(".legend-item").count() >= 6
    page.click('[data-umap="in"]')
    svg.evaluate("e => e.scrollIntoView({block: 'center'})")
    assert svg.get_attribute("viewBox") != "0 0 600 600"
    box = svg.bounding_box()
    page.mouse.move(box["x"] + 300, box["y"] + 300)
    page.mouse.wheel(0, -300)
    zoomed = svg.get_attribute("viewBox")
    page.mouse.move(box["x"] + 300, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(box["x"] + 360, box["y"] + 340, steps=5)
    page.mouse.up()
    assert svg.get_attribute("viewBox") != zoomed  # panned
    page.click('[data-umap="reset"]')
    assert svg.get_attribute("viewBox") == "0.00 0.00 600.00 600.00"
    # legend: a cluster's points stand out
    page.locator(".legend-item").first.click()
    assert page.locator("#umap-svg circle.hit").count() > 10
    assert page.locator(".legend-item").first.get_attribute("aria-pressed") == "true"
    page.locator(".legend-item").first.click()
    # hover: the point grows, the rest dim, the tooltip names it
    index = page.locator("#umap-svg circle").nth(5).get_attribute("data-i")
    dot = page.locator(f'#umap-svg circle[data-i="{index}"]')
    dot.hover()
    assert "hover" in (dot.get_attribute("class") or "")
    assert "hovering" in (svg.get_attribute("class") or "")
    assert page.locator("#umap-tip").is_visible()
    # region: Shift+drag over the whole map lists the features, and the list can be saved
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.keyboard.down("Shift")
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=8)
    page.mouse.up()
    page.keyboard.up("Shift")
    selection = page.locator("#umap-selection")
    selection.wait_for()
    n = page.locator("#umap-selection-list li").count()
    assert n > 100
    screenshot(page, "defect-9-umap")
    page.click("#umap-make-list button")
    page.wait_for_url(re.compile(r"/lists/new"))
    assert "selected on the map" in page.locator("#region-note").inner_text()
    page.fill("#id_name", "map region")
    page.click("#list-form button")
    page.wait_for_url(re.compile(r"/lists/\d+/$"))
    assert page.locator(".mini").count() == min(n, 500)


# 10 -----------------------------------------------------------------------------------------------
def test_tokens_are_keyboard_focusable_and_highlight_is_not_colour_only(live_server, page, rich) -> None:
    page.goto(live_server.url + "/gpt2-small/6-res-jb/200")
    first_hot = page.locator(".act-groups .tok.hot").first
    first_hot.focus()
    tip = page.locator("#tok-tip")
    tip.wait_for(state="visible")
    assert first_hot.get_attribute("data-v") in tip.inner_text()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('tok')")
    style = first_hot.evaluate("e => getComputedStyle(e).textDecorationLine")
    assert "underline" in style
    assert page.locator(".tok.max").first.evaluate("e => getComputedStyle(e).fontWeight") == "700"
    # every textarea has an accessible name
    for url in ("/gpt2-small/6-res-jb/200", "/search", "/search-topk", "/steer"):
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
        unnamed = page.evaluate("""() => [...document.querySelectorAll('textarea')].filter(t =>
            !t.getAttribute('aria-label') && !(t.id && document.querySelector('label[for="' + t.id + '"]'))
            && !t.closest('label')).length""")
        assert unnamed == 0, url
    # muted text contrast >= 4.5:1 on white
    page.goto(live_server.url + "/gpt2-small/6-res-jb/200")
    ratio = page.evaluate("""() => {
        const m = getComputedStyle(document.querySelector('.muted')).color.match(/\\d+/g).map(Number);
        const lin = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
        const L = 0.2126 * lin(m[0]) + 0.7152 * lin(m[1]) + 0.0722 * lin(m[2]);
        return 1.05 / (L + 0.05); }""")
    assert ratio >= 4.5


def test_mobile_nav_is_one_line_and_top_activations_come_first(live_server, browser, rich) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(live_server.url + "/gpt2-small/6-res-jb/200")
        bar = page.locator(".topbar").bounding_box()
        brand = page.locator(".topbar .brand").bounding_box()
        assert bar["height"] < 2.2 * brand["height"] + 20  # one line (it used to take three)
        acts = page.locator("#activations").bounding_box()
        stats = page.locator("#stats").bounding_box()
        assert acts["y"] < stats["y"]
        screenshot(page, "defect-10-mobile")
    finally:
        context.close()


def test_explanation_search_shows_progress_during_a_cold_start(live_server, page, rich, monkeypatch) -> None:
    from features.models import Explanation
    from tests.ui.test_search_steer import FakeEmbedder, _vec

    class ColdEmbedder(FakeEmbedder):  # the first search loads the embedding model: seconds
        def embed(self, texts: list[str]) -> Any:
            time.sleep(1.5)
            return super().embed(texts)

    Explanation.objects.filter(pk=rich["explanation"].pk).update(embedding=_vec(True).tolist(),
                                                                  embedder="all-MiniLM-L6-v2")
    monkeypatch.setattr("autointerp.embedders.get_embedder", lambda name, user=None: ColdEmbedder())
    page.goto(live_server.url + "/search-explanations")
    loading = page.locator("#search-loading")
    assert not loading.is_visible()
    page.fill("input[name=q]", "cities in France")
    page.click("#expl-search-form button")
    loading.wait_for(state="visible")
    assert "Searching" in loading.inner_text()
    assert page.locator("#expl-search-form button").is_disabled()  # no double submits meanwhile
    page.locator("#embedder-used").wait_for()
    assert not loading.is_visible()
