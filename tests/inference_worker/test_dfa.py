"""Direct feature attribution for attention SAEs: the per-source terms add up to the encoder's input
projection at the target token, nothing comes from after it, and grouped-query attention is handled."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from inference_worker.dfa import attention_layer, direct_feature_attribution, supports_dfa
from inference_worker.models import build_tiny_model
from inference_worker.saes import source_from_sae

torch.set_num_threads(1)


def _attn_source(model: Any, layer: int, d_sae: int = 12) -> Any:
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    hook = f"blocks.{layer}.attn.hook_z"
    d_in = model.cfg.n_heads * model.cfg.d_head
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae,
                                        metadata=SAEMetadata(hook_name=hook, model_name="tiny")))
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(d_in, d_sae, generator=torch.Generator().manual_seed(1)))
    return source_from_sae(f"{layer}-att", sae.eval())


def _z(model: Any, tokens: torch.Tensor, layer: int) -> torch.Tensor:
    _, cache = model.run_with_cache(tokens, names_filter=f"blocks.{layer}.attn.hook_z")
    return cache[f"blocks.{layer}.attn.hook_z"].flatten(-2)  # [b, ctx, h*d]


@pytest.mark.parametrize("kv_heads", [None, 2])
def test_terms_sum_to_the_projection_at_the_target_and_nothing_comes_from_the_future(kv_heads: Any) -> None:
    model = build_tiny_model(seed=0, n_layers=2, d_model=64, n_heads=4)
    if kv_heads:  # the same tiny model with grouped-query attention (2 value heads for 4 query heads)
        from transformer_lens import HookedTransformer

        cfg = model.cfg.to_dict() | {"n_key_value_heads": kv_heads}
        cfg.pop("n_params", None)
        model = HookedTransformer(type(model.cfg)(**cfg), tokenizer=model.tokenizer).eval()
        assert model.blocks[1].attn._W_V.shape[0] == kv_heads  # really grouped
    source = _attn_source(model, layer=1)
    tokens = torch.randint(1, model.cfg.d_vocab, (5, 16), generator=torch.Generator().manual_seed(2))
    tokens[4] = tokens[1]  # rows sharing a sequence run it once
    features = torch.tensor([0, 3, 7, 11, 5])
    targets = torch.tensor([15, 4, 9, 0, 12])
    dfa = direct_feature_attribution(model, source, tokens, features, targets, batch_size=2)
    z = _z(model, tokens, 1)
    w_enc = source.sae.W_enc.detach()
    for i in range(len(tokens)):
        expected = z[i, targets[i]] @ w_enc[:, features[i]]
        assert torch.allclose(dfa[i].sum(), expected, atol=1e-4, rtol=1e-4)
        assert torch.all(dfa[i, targets[i] + 1:] == 0)  # causal: no source after the target
    assert dfa[3, 0] == pytest.approx(float(z[3, 0] @ w_enc[:, 11]), abs=1e-4)


def test_only_attention_sources_with_an_encoder_support_it() -> None:
    model = build_tiny_model(seed=0, n_layers=2, d_model=64, n_heads=4)
    assert attention_layer("blocks.3.attn.hook_z") == 3
    assert attention_layer("blocks.3.hook_resid_post") is None
    assert supports_dfa(_attn_source(model, 0))
    resid = type("S", (), {"hook_name": "blocks.0.hook_resid_post", "sae": None})()
    assert not supports_dfa(resid)
    with pytest.raises(ValueError, match="attention-output hook"):
        direct_feature_attribution(model, resid, torch.zeros(1, 4, dtype=torch.long), torch.tensor([0]),
                                   torch.tensor([1]))
