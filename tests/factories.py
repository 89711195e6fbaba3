"""Factories for the catalog. Plain functions: simpler than factory_boy for a tight FK cluster."""

from __future__ import annotations

from typing import Any

from features.models import Activation, Feature, Model, Source, SourceRelease, SourceSet


def make_model(model_id: str = "gpt2-small", **kwargs: Any) -> Model:
    defaults = {"display_name": "GPT-2 Small", "layers": 12, "dimension": 768}
    return Model.objects.create(id=model_id, **{**defaults, **kwargs})


def make_source(model: Model, layer: int = 6, set_name: str = "res-jb", **kwargs: Any) -> Source:
    source_set, _ = SourceSet.objects.get_or_create(model=model, name=set_name)
    defaults = {"hook_name": f"blocks.{layer}.hook_resid_pre", "num_features": 16}
    return Source.objects.create(model=model, source_set=source_set, name=f"{layer}-{set_name}",
                                 layer=layer, **{**defaults, **kwargs})


def make_feature(source: Source, index: int, **kwargs: Any) -> Feature:
    return Feature.objects.create(source=source, index=index, **kwargs)


def make_activation(feature: Feature, tokens: list[str], values: list[float],
                    **kwargs: Any) -> Activation:
    top = max(range(len(values)), key=values.__getitem__)
    return Activation.objects.create(feature=feature, tokens=tokens, values=values,
                                     max_value=values[top], max_value_token_index=top, **kwargs)


def make_catalog() -> dict[str, Any]:
    release = SourceRelease.objects.create(name="res-jb-release", description="Joseph Bloom SAEs")
    model = make_model()
    source = make_source(model)
    source.source_set.release = release
    source.source_set.save()
    feature = make_feature(source, 200, max_act_approx=9.5, frac_nonzero=0.001,
                           pos_str=[" Paris", " France"], pos_values=[1.2, 0.9],
                           neg_str=[" the"], neg_values=[-0.7])
    make_activation(feature, ["The", " capital", " of", " France"], [0.0, 0.5, 0.0, 9.5],
                    bin_min=-1, bin_max=9.5, bin_contains=-1)
    make_activation(feature, ["I", " love", " Paris"], [0.0, 0.1, 4.0])
    return {"release": release, "model": model, "source": source, "feature": feature}


def identity_sae(hook_name: str, d_in: int = 64) -> Any:
    """A SAE-Lens StandardSAE with W_enc = [I, -I] and no biases: feature i < d_in is relu(x_i), feature
    d_in + i is relu(-x_i); the decoder reconstructs x exactly. Predictable activations for tests."""
    import torch
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    cfg = StandardSAEConfig(d_in=d_in, d_sae=2 * d_in,
                            metadata=SAEMetadata(hook_name=hook_name, model_name="tiny"))
    sae = StandardSAE(cfg)
    eye = torch.eye(d_in)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()
