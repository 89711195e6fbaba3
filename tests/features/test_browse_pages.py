"""Browse pages (issue 18): release, source set across layers, model grouped by set and layer, the comparison
table; on catalog rows made like the demo's (core evals written by the dashboards job's layout) and on a
source imported from a Neuronpedia-format export. Routing of the catch-all URLs."""

from __future__ import annotations

import contextlib
import html
import re
from pathlib import Path
from typing import Any

import pytest

from features.models import Eval, Explanation, Model, SourceRelease
from neuronpedia.lib.jobs import JobStatus
from tests import factories
from transfer import services as transfer_services
from transfer.importer.synthetic import SyntheticSpec, write_source
from transfer.tasks import import_source_task

pytestmark = pytest.mark.django_db


def between(body: str, start: str, end: str) -> str:
    """The part of `body` from `start` to the next `end`."""
    at = body.index(start)
    return body[at:body.index(end, at)]


def core_eval(l0: float, ev: float, ce: float, dead: float, n_tokens: int = 204_800) -> dict[str, Any]:
    """The `core` Eval output as the dashboards job writes it (inference_worker/dashboards.py _evals)."""
    return {"sparsity": {"l0": l0}, "misc": {"frac_dead": dead, "n_tokens": n_tokens, "n_eval_tokens": 8192},
            "reconstruction_quality": {"explained_variance": ev, "mse": 0.01},
            "model_performance_preservation": {"ce_loss_without_sae": 3.0, "ce_loss_with_sae": 3.2,
                                               "ce_loss_with_ablation": 9.0, "ce_loss_score": ce},
            "excluding_attention_sink": {"positions_excluded": 2, "ce_loss_score": round(ce + 0.3, 3)}}


@pytest.fixture
def demo_like(db: None) -> dict[str, Any]:
    return make_demo_like()


def make_demo_like() -> dict[str, Any]:
    """A model with a two-layer set in a featured release, evals on both layers, features on both."""
    release = SourceRelease.objects.create(name="demo-saes", description="SAEs trained offline",
                                           description_short="Demo SAEs", creator_name="Us", featured=True)
    model = factories.make_model("tiny-lm", display_name="Tiny LM", layers=4, dimension=64)
    sources = []
    for layer, (l0, ev, ce) in zip((1, 3), ((32.0, 0.78, 0.66), (48.0, 0.84, 0.71)), strict=True):
        source = factories.make_source(model, layer=layer, set_name="res-demo", num_features=8,
                                       has_dashboards=True, has_umap=True)
        source.source_set.release = release
        source.source_set.type = "sae"
        source.source_set.save()
        Eval.objects.create(source=source, type="core", output=core_eval(l0, ev, ce, 0.125))
        Eval.objects.create(source=source, type="training", output={"n_tokens": 2_000_000, "l0": l0})
        for index in range(8):
            factories.make_feature(source, index, max_act_approx=float(layer * 10 + index),
                                   frac_nonzero=0.5 if index == 7 else 0.01, is_dead=index == 6,
                                   umap_x=float(index), umap_y=float(index % 3))
        sources.append(source)
    feature = sources[1].features.get(index=5)
    Explanation.objects.create(feature=feature, description="numbers in tables")
    return {"release": release, "model": model, "sources": sources}


def test_release_page_lists_its_sets_and_layers(client, demo_like) -> None:
    body = client.get("/demo-saes").content.decode()
    assert "Demo SAEs" in body
    assert "SAEs trained offline" in body
    assert 'href="/tiny-lm/res-demo"' in body
    assert 'href="/tiny-lm/1-res-demo/"' in body
    assert 'href="/tiny-lm/3-res-demo/"' in body
    assert "/compare?release=demo-saes" in body
    home = client.get("/").content.decode()  # the home page links the release, its sets and the comparison
    assert 'href="/demo-saes"' in home
    assert 'href="/tiny-lm/res-demo"' in home
    assert 'href="/compare"' in home


def test_model_and_release_urls_resolve_like_neuronpedia(client, demo_like) -> None:
    # a model name goes to the model page, first (Neuronpedia's order)
    assert client.get("/tiny-lm").url == "/tiny-lm/"
    # a source name without the slash goes to the source page; a set with a slash to the set page
    assert client.get("/tiny-lm/1-res-demo").url == "/tiny-lm/1-res-demo/"
    assert client.get("/tiny-lm/res-demo/").url == "/tiny-lm/res-demo"
    # unknown names are 404 pages, and the APPEND_SLASH behaviour of other pages is kept
    assert client.get("/no-such-thing").status_code == 404
    assert client.get("/tiny-lm/no-such-set").status_code == 404
    assert client.get("/tiny-lm/no-such-set/").status_code == 404
    assert client.get("/lists").url == "/lists/"
    assert client.get("/accounts/api-keys").url == "/accounts/api-keys/"
    # a catch-all route hides nothing: an unknown API path stays a JSON 404, POST included
    for method in (client.get, client.post):
        response = method("/api/no-such-endpoint")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")
    assert client.post("/tiny-lm/res-demo").status_code == 405
    assert client.post("/demo-saes").status_code == 405


def test_source_set_page_spans_layers(client, demo_like) -> None:
    response = client.get("/tiny-lm/res-demo")
    assert response.status_code == 200
    body = response.content.decode()
    assert "2 sources across layers" in body
    # evals of both layers, readable
    assert "0.780" in body
    assert "0.840" in body
    assert "32.0" in body
    assert "48.0" in body
    # jump to any layer, search scoped to the set
    assert 'name="source_set" value="res-demo"' in body
    assert '<option value="3-res-demo">' in body
    # the cross-layer browser: by index, both layers interleaved
    rows = re.findall(r'href="/tiny-lm/(\d-res-demo)/(\d+)"', body)
    assert rows[:4] == [("1-res-demo", "0"), ("3-res-demo", "0"), ("1-res-demo", "1"), ("3-res-demo", "1")]


def test_cross_layer_browser_sorts_by_max_activation_and_filters_layers(client, demo_like) -> None:
    body = client.get("/tiny-lm/res-demo?panel=browser&sort=max", HTTP_HX_REQUEST="true").content.decode()
    rows = re.findall(r'href="/tiny-lm/(\d-res-demo)/(\d+)"', body)
    assert rows[:3] == [("3-res-demo", "7"), ("3-res-demo", "6"), ("3-res-demo", "5")]
    assert rows[8] == ("1-res-demo", "7")  # 17 after every layer-3 feature (30..37)
    assert "numbers in tables" in body
    only = client.get("/tiny-lm/res-demo?panel=browser&layer=1").content.decode()
    assert set(re.findall(r'href="/tiny-lm/(\d-res-demo)/', only)) == {"1-res-demo"}
    # 16 features, pages of 50: no next link; an unreadable cursor is the first page, not an error
    assert 'rel="next"' not in body
    assert client.get("/tiny-lm/res-demo?panel=browser&after=abc").status_code == 200
    assert client.get("/tiny-lm/res-demo?panel=browser&sort=max&after=1e999:x:-1").status_code == 200
    for cursor in ("1e999:1-res-demo:3", "nan:1-res-demo:3", "5:1-res-demo:99999999999", "1e12:3-res-demo:1"):
        for sort in ("index", "max"):
            url = f"/tiny-lm/res-demo?panel=browser&sort={sort}&after={cursor}"
            assert client.get(url).status_code == 200


@pytest.mark.parametrize("sort", ["index", "max"])
def test_cross_layer_browser_keyset_pages_cover_every_feature_once(demo_like, sort: str) -> None:
    from features import browse
    from features.models import Feature

    one, three = demo_like["sources"]
    # ties across layers and within a layer: the order stays total
    Feature.objects.filter(source=one, index__in=[2, 3]).update(max_act_approx=33.0)
    Feature.objects.filter(source=three, index=1).update(max_act_approx=33.0)
    full, cursor = browse.set_feature_page([one, three], sort=sort, size=100)
    assert cursor == ""
    assert len(full) == 16
    pages, after = [], ""
    while True:
        rows, after = browse.set_feature_page([one, three], sort=sort, after=after, size=5)
        pages += rows
        if not after:
            break
    assert [(f.source.name, f.index) for f, _ in pages] == [(f.source.name, f.index) for f, _ in full]
    if sort == "max":
        values = [f.max_act_approx for f, _ in full]
        assert values == sorted(values, reverse=True)
        assert [(f.source.name, f.index) for f, _ in full if f.max_act_approx == 33.0] == [
            ("1-res-demo", 2), ("1-res-demo", 3), ("3-res-demo", 1), ("3-res-demo", 3)]  # 3-res-demo/3: 30+3


def test_set_umap_draws_every_layer(client, demo_like) -> None:
    body = client.get("/tiny-lm/res-demo?panel=umap", HTTP_HX_REQUEST="true").content.decode()
    assert body.count("<circle") == 16
    # explanations are escaped in the map's attributes
    Explanation.objects.create(feature=demo_like["sources"][0].features.get(index=0),
                               description='"><script>alert(1)</script>')
    body = client.get("/tiny-lm/res-demo?panel=umap", HTTP_HX_REQUEST="true").content.decode()
    assert "<script>alert" not in body
    assert 'data-e="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in body
    assert 'data-s="1-res-demo"' in body
    assert 'data-s="3-res-demo"' in body
    assert "L1" in body
    assert "L3" in body


def test_model_page_groups_sources_by_set_and_layer_with_inference_status(client, demo_like) -> None:
    factories.make_source(demo_like["model"], layer=3, set_name="att-demo", num_features=4)
    body = client.get("/tiny-lm/").content.decode()
    assert 'id="no-worker"' in body
    grid = between(body, 'id="layer-grid"', "</table>")
    assert re.findall(r"<th scope=\"row\">(\d+)</th>", grid) == ["1", "3"]
    layer3 = grid[grid.index('<th scope="row">3</th>'):]
    assert "3-att-demo" in layer3
    assert "3-res-demo" in layer3
    assert 'href="/demo-saes"' in body  # the release of the set
    assert "0.660" in body  # CE loss recovered of layer 1


def test_compare_page_holds_every_source_with_metrics(client, demo_like) -> None:
    factories.make_source(demo_like["model"], layer=2, set_name="other", num_features=4)
    response = client.get("/compare?model=tiny-lm")
    assert response.status_code == 200
    data = response.context["data"]
    by_name = {d["source"]: d for d in data}
    assert set(by_name) == {"1-res-demo", "3-res-demo", "2-other"}
    one = by_name["1-res-demo"]
    metrics = (one["l0"], one["explained_variance"], one["ce_loss_score"], one["frac_dead"])
    assert metrics == (32.0, 0.78, 0.66, 0.125)
    assert one["frac_dense"] == pytest.approx(1 / 8)  # from the feature rows: index 7 fires on 50% of tokens
    assert one["ce_loss_score_sink"] == pytest.approx(0.96)  # the labelled variant, beside the headline
    assert one["training_tokens"] == 2_000_000
    assert one["width"] == 8
    assert one["layer"] == 1
    assert one["release"] == "demo-saes"
    assert by_name["2-other"]["l0"] is None  # not measured stays empty, never 0
    body = response.content.decode()
    assert 'id="compare-data"' in body
    assert '<option value="tiny-lm" selected>' in body
    assert "2M" in body  # training tokens, readable


def _import(root: Path, source: str) -> None:
    job = transfer_services.start_import(model_id="gpt2-small", sources=[source], base=str(root))
    with contextlib.suppress(Exception):
        import_source_task(job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error


@pytest.fixture
def imported(db: None, tmp_path: Path) -> dict[str, Any]:
    """Two layers of res-jb from Neuronpedia-format exports (the synthetic exporter's files), imported by
    the product's own import job."""
    for layer in (6, 8):
        write_source(tmp_path, SyntheticSpec(layer=layer, num_features=30, acts_per_feature=2, context=6,
                                             batch_size=16, seed=layer))
    _import(tmp_path, "6-res-jb")
    _import(tmp_path, "8-res-jb")
    return {"model": Model.objects.get(pk="gpt2-small")}


def test_imported_release_set_model_and_compare_pages(client, imported) -> None:
    release = client.get("/res-jb")
    assert release.status_code == 200
    body = release.content.decode()
    assert "Residual stream SAEs by Joseph Bloom" in body
    assert "/gpt2-small/res-jb" in body
    set_page = client.get("/gpt2-small/res-jb").content.decode()
    assert "2 sources across layers" in set_page
    assert set(re.findall(r'href="/gpt2-small/(\d+-res-jb)/\d+"', set_page)) == {"6-res-jb", "8-res-jb"}
    umap = client.get("/gpt2-small/res-jb?panel=umap").content.decode()
    assert "No UMAP coordinates in this set" in umap  # Neuronpedia's exporter leaves the UMAP columns out
    model = client.get("/gpt2-small/").content.decode()
    assert "6-res-jb" in model
    assert "8-res-jb" in model
    assert 'href="/res-jb"' in model
    data = {d["source"]: d for d in client.get("/compare?release=res-jb").context["data"]}
    assert set(data) >= {"6-res-jb", "8-res-jb"}
    assert data["6-res-jb"]["l0"] is None  # Neuronpedia's export carries no evals
    assert data["6-res-jb"]["frac_dead"] is not None  # counted from the imported feature rows



def test_feature_extras_show_imported_correlations_and_snippet(client, imported) -> None:
    from features.models import Feature

    feature = Feature.objects.get(source__name="6-res-jb", index=4)
    page = client.get("/gpt2-small/6-res-jb/4").content.decode()
    assert 'hx-get="/gpt2-small/6-res-jb/4/panel/extras"' in page
    body = html.unescape(client.get("/gpt2-small/6-res-jb/4/panel/extras").content.decode())
    # Neuronpedia's exporter writes neuron alignment (and empty correlated neurons), not correlated features
    assert feature.neuron_alignment_indices
    assert feature.correlated_features_indices is None
    alignment = between(body, 'id="neuron-alignment"', "</table>")
    for index, value in zip(feature.neuron_alignment_indices, feature.neuron_alignment_values, strict=True):
        assert f"<td>{index}</td><td class=\"num\">{value:.3f}</td>" in alignment
    # the SAE-Lens snippet from the imported saelensRelease / saelensSaeId
    assert 'SAE.from_pretrained(release="gpt2-small-res-jb", sae_id="blocks.6.hook_resid_pre")' in body
    assert "sae.W_dec[4]" in body
    # embed options: Neuronpedia's parameters
    for key in ("embedexplanation", "embedplots", "embedtest", "embedactivations", "embedlink", "embedsteer"):
        assert f'data-embed-opt="{key}"' in body
    assert "Not computed yet" in body  # no weights for cross-source similarity in an export


def test_embed_options_as_query_parameters(client, demo_like) -> None:
    url = "/tiny-lm/3-res-demo/5"
    full = client.get(url)
    assert full.status_code == 200
    assert full.get("X-Frame-Options") == "DENY"
    embed = client.get(url + "?embed=true")
    assert embed.status_code == 200
    assert "X-Frame-Options" not in embed
    body = embed.content.decode()
    assert 'class="topbar"' not in body
    assert 'id="embed-root"' in body
    assert "embed-no-" not in body
    assert 'class="btn" href="/steer' not in body or "embed-steer" in body
    hidden = client.get(url + "?embed=true&embedplots=false&embedexplanation=false&embedtest=false"
                        "&embedsteer=false").content.decode()
    assert "embed-no-plots" in hidden
    assert "embed-no-explanation" in hidden
    assert 'class="card embed-test"' not in hidden
    assert "embed-steer" not in hidden
    assert 'id="activations"' in hidden  # still rendered: only what was switched off goes
    # the /embed/ URL takes the same options
    assert "embed-no-activations" in client.get(f"/embed{url}?embedactivations=false").content.decode()


def _sae_folder(root: Path, name: str, w_dec: Any) -> str:
    from safetensors.torch import save_file

    folder = root / name
    folder.mkdir()
    save_file({"W_dec": w_dec.contiguous()}, str(folder / "sae_weights.safetensors"))
    return str(folder)


def test_cross_source_similar_features_job(client, demo_like, tmp_path: Path) -> None:
    import torch
    from django.core.management import call_command

    from features.models import CrossSourceSimilarity

    gen = torch.Generator().manual_seed(0)
    first = torch.randn(8, 16, generator=gen)
    # layer 3's decoder: layer 1's rows permuted (row j = layer-1 row perm[j]) plus a little noise
    perm = torch.tensor([3, 0, 7, 1, 6, 2, 5, 4])
    second = first[perm] + 0.01 * torch.randn(8, 16, generator=gen)
    one, three = demo_like["sources"]
    one.local_path = _sae_folder(tmp_path, "one", first)
    one.save()
    three.local_path = _sae_folder(tmp_path, "three", second)
    three.save()
    call_command("compute_similar_features", "tiny-lm", "--top-k", "3", "--inline")
    assert CrossSourceSimilarity.objects.count() == 16  # every feature of each source, against the other
    unit1 = first / first.norm(dim=1, keepdim=True)
    unit3 = second / second.norm(dim=1, keepdim=True)
    for j in range(8):
        row = CrossSourceSimilarity.objects.get(feature__source=three, feature__index=j, other_source=one)
        assert row.indices[0] == int(perm[j])
        expected = torch.topk(unit3[j] @ unit1.T, 3)
        assert row.indices == expected.indices.tolist()
        assert row.values == pytest.approx(expected.values.tolist(), abs=1e-4)
    # twice: upserted, not duplicated
    call_command("compute_similar_features", "tiny-lm", "--top-k", "3", "--inline")
    assert CrossSourceSimilarity.objects.count() == 16
    body = html.unescape(client.get("/tiny-lm/3-res-demo/5/panel/extras").content.decode())
    section = between(body, 'id="cross-similar"', "</section>")
    assert f'href="/tiny-lm/1-res-demo/{int(perm[5])}"' in section
    assert 'SAE.load_from_disk("' in body  # a local folder: the snippet loads it from disk


def test_correlated_features_and_neurons_are_shown(client, demo_like) -> None:
    from features.models import Feature

    Feature.objects.filter(source__name="3-res-demo", index=2).update(
        correlated_features_indices=[5, 1], correlated_features_pearson=[0.91, -0.25],
        correlated_features_l1=[0.5, 0.1], correlated_neurons_indices=[700],
        correlated_neurons_pearson=[0.42], correlated_neurons_l1=[0.3])
    body = client.get("/tiny-lm/3-res-demo/2/panel/extras").content.decode()
    table = between(body, 'id="correlated-features"', "</table>")
    assert re.findall(r'href="/tiny-lm/3-res-demo/(\d+)"', table) == ["5", "1"]
    assert "0.910" in table
    assert "-0.250" in table
    assert "numbers in tables" in table
    neurons = body[body.index('id="correlated-neurons"'):]
    assert "<td>700</td>" in neurons
    assert "0.420" in neurons


def test_model_set_and_compare_pages_show_a_live_worker(client, demo_like) -> None:
    """A registered worker whose Redis liveness key is fresh: the pages say which sources it serves."""
    from inference import client as inference

    name = "b2-test-worker-tiny"
    inference.register_host(name=name, model=demo_like["model"], device="cpu", dtype="float32",
                            source_names=["3-res-demo"])
    try:
        body = client.get("/tiny-lm/").content.decode()
        assert 'id="worker-live"' in body
        assert 'id="no-worker"' not in body
        status = between(body, 'id="inference-status"', "</section>")
        assert f"<code>{name}</code>" in status
        assert "3-res-demo" in status
        grid = between(body, 'id="layer-grid"', "</table>")
        assert grid.count('badge live') == 1  # only the served source
        set_rows = {r.source.name: r.live for r in client.get("/tiny-lm/res-demo").context["rows"]}
        assert set_rows == {"1-res-demo": False, "3-res-demo": True}
        assert client.get("/compare").content.decode().count("badge live") == 1
    finally:
        inference.mark_dead(name, "tiny-lm")
    assert 'id="no-worker"' in client.get("/tiny-lm/").content.decode()


def test_a_model_id_with_a_dot_breaks_no_page(client, demo_like) -> None:
    """Neuronpedia has ids like `llama3.1-8b`; the model routes take slugs, so such a model has no model page
    here, but the catch-alls and the comparison must not fail on it."""
    dotted = factories.make_model("llama3.1-8b", layers=32, dimension=4096)
    factories.make_source(dotted, layer=5, set_name="res-x", num_features=4)
    body = client.get("/compare").content.decode()
    assert 'href="/llama3.1-8b/5-res-x/"' in body
    assert client.get("/llama3.1-8b").status_code == 404
    assert client.get("/llama3.1-8b/res-x").status_code == 404
    assert client.get("/llama3.1-8b/5-res-x").status_code == 404
