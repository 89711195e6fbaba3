"""Dashboards of an attention SAE carry direct feature attribution (DFA) on their top examples, stored
on the activation rows as Neuronpedia's are, and the feature page draws it."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from django.test import Client

from features.models import Activation, Model, Source, SourceSet
from inference import dashboards as service
from inference_worker.dashboards import DashboardConfig, generate_dashboards
from inference_worker.saes import source_from_sae

pytestmark = pytest.mark.django_db

CFG = DashboardConfig(umap=False, eval_sequences=0, top_k=5, n_bins=2, bin_size=2)


def _attention_sae(model: Any, layer: int = 1, d_sae: int = 16) -> Any:
    """An SAE on blocks.1.attn.hook_z with zero biases: a feature's value is relu(z · W_enc[:, f]), so at
    a top example's target token it equals the sum of the DFA terms."""
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    hook = f"blocks.{layer}.attn.hook_z"
    d_in = model.cfg.n_heads * model.cfg.d_head
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae,
                                        metadata=SAEMetadata(hook_name=hook, model_name="tiny")))
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(d_in, d_sae, generator=torch.Generator().manual_seed(4)))
        sae.W_dec.copy_(torch.randn(d_sae, d_in, generator=torch.Generator().manual_seed(5)))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return source_from_sae(f"{layer}-att", sae.eval())


def test_attention_dashboards_store_dfa_that_adds_up_and_the_page_shows_it(
        tiny_model: Any, sequences: torch.Tensor) -> None:
    worker_source = _attention_sae(tiny_model)
    result = generate_dashboards(tiny_model, worker_source, sequences[:12], CFG, batch_size=4)
    model = Model.objects.create(id="tiny", layers=2, dimension=64)
    source_set = SourceSet.objects.create(model=model, name="att")
    source = Source.objects.create(model=model, source_set=source_set, name="1-att", layer=1,
                                   hook_name="blocks.1.attn.hook_z")
    service.write_dashboards(source=source, result=result, dataset="x", context_size=32)

    top = Activation.objects.filter(feature__source=source, bin_min=-1)
    assert top.exists()
    for act in top:
        assert len(act.dfa_values) == len(act.tokens)
        assert act.dfa_target_index == act.qualifying_token_index == act.max_value_token_index
        assert act.dfa_max_value == pytest.approx(max(act.dfa_values), abs=1e-3)
        # the terms add up to the feature's value at the target (rounded to 3 digits each)
        value = act.values[act.dfa_target_index]
        assert sum(act.dfa_values) == pytest.approx(value, abs=0.002 * len(act.tokens))
        assert all(v == 0 for v in act.dfa_values[act.dfa_target_index + 1:])  # causal attention
    others = Activation.objects.filter(feature__source=source).exclude(bin_min=-1)
    assert all(not a.dfa_values and a.dfa_target_index is None for a in others)
    source_set.refresh_from_db()
    assert source_set.show_dfa

    feature = top.first().feature
    html = Client().get(f"/tiny/1-att/{feature.index}").content.decode()
    assert html.count('class="activation dfa-row"') == top.filter(feature=feature).count()
    assert 'class="tok dfa' in html
    assert "dfa target" in html or "neg target" in html


def test_residual_dashboards_have_no_dfa(tiny_model: Any, id_source: Any, sequences: torch.Tensor) -> None:
    result = generate_dashboards(tiny_model, id_source, sequences[:8], CFG, batch_size=4)
    model = Model.objects.create(id="tiny", layers=2, dimension=64)
    source = Source.objects.create(model=model, source_set=SourceSet.objects.create(model=model, name="id"),
                                   name="0-id", layer=0, hook_name="blocks.0.hook_resid_post")
    service.write_dashboards(source=source, result=result, dataset="x", context_size=32)
    assert not Activation.objects.filter(feature__source=source, dfa_target_index__isnull=False).exists()
    source.source_set.refresh_from_db()
    assert not source.source_set.show_dfa
