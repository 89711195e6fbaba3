"""Our core evals against SAE-Lens's own evals functions (sae_lens.evals) on the same tokens.

The dashboard job's headline metrics must mean what SAE-Lens (and SAEBench) mean: the SAE spliced in at
every position but the tokenizer's special tokens, the zero ablation everywhere, averages over the
non-special tokens. The attention-sink variant is a separate, labelled group."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from inference_worker.dashboards import DashboardConfig, generate_dashboards
from inference_worker.saes import source_from_sae


class _Tokens:
    """What SAE-Lens's eval loops read from an ActivationsStore: batches of token ids (ours)."""

    def __init__(self, tokens: torch.Tensor) -> None:
        self.tokens = tokens

    def get_batch_tokens(self, n: int) -> torch.Tensor:
        return self.tokens[:n]


def saelens_core(model: Any, sae: Any, tokens: torch.Tensor) -> dict[str, float]:
    from sae_lens.evals import get_downstream_reconstruction_metrics, get_sparsity_and_variance_metrics
    from sae_lens.training.activation_scaler import ActivationScaler
    from sae_lens.util import get_special_token_ids

    ignore = list(get_special_token_ids(model.tokenizer)) or None  # run_evals(exclude_special_tokens=True)
    store, scaler, n = _Tokens(tokens), ActivationScaler(), tokens.shape[0]
    with torch.no_grad():
        ce = get_downstream_reconstruction_metrics(
            sae, model, store, scaler, compute_kl=False, compute_ce_loss=True, n_batches=1,
            eval_batch_size_prompts=n, ignore_tokens=ignore)
        sv, _ = get_sparsity_and_variance_metrics(
            sae, model, store, scaler, n_batches=1, compute_l2_norms=False, compute_sparsity_metrics=True,
            compute_variance_metrics=True, compute_featurewise_density_statistics=False,
            eval_batch_size_prompts=n, model_kwargs={}, ignore_tokens=ignore)
    return {**ce, **sv}


def random_sae(hook: str, d_in: int, d_sae: int, seed: int) -> Any:
    """A StandardSAE with random weights and a negative encoder bias: sparse, lossy, nothing exact."""
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    gen = torch.Generator().manual_seed(seed)
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae,
                                        metadata=SAEMetadata(hook_name=hook, model_name="tiny")))
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(d_in, d_sae, generator=gen) / d_in**0.5)
        sae.b_enc.fill_(-0.3)
        sae.W_dec.copy_(sae.W_enc.T.clone())
        sae.b_dec.copy_(torch.randn(d_in, generator=gen) * 0.1)
    return sae.eval()


def check_agreement(ours: dict[str, Any], ref: dict[str, float]) -> None:
    perf, recon = ours["model_performance_preservation"], ours["reconstruction_quality"]
    for key in ("ce_loss_without_sae", "ce_loss_with_sae", "ce_loss_with_ablation", "ce_loss_score"):
        assert perf[key] == pytest.approx(ref[key], rel=2e-4, abs=2e-5), key
    assert recon["explained_variance"] == pytest.approx(ref["explained_variance"], rel=2e-4, abs=2e-5)
    assert recon["mse"] == pytest.approx(ref["mse"], rel=2e-4)
    assert recon["cossim"] == pytest.approx(ref["cossim"], rel=2e-4)
    assert ours["sparsity"]["l0"] == pytest.approx(ref["l0"], rel=1e-6)


def test_core_evals_match_saelens_on_the_same_tokens(tiny_model: Any, sequences: torch.Tensor) -> None:
    hook = "blocks.0.hook_resid_post"
    sae = random_sae(hook, tiny_model.cfg.d_model, 96, seed=1)
    tokens = sequences[:12]
    ours = generate_dashboards(tiny_model, source_from_sae("0-rand", sae), tokens,
                               DashboardConfig(umap=False, eval_sequences=12), batch_size=5).evals
    ref = saelens_core(tiny_model, sae, tokens)
    check_agreement(ours, ref)
    perf = ours["model_performance_preservation"]
    assert perf["ce_loss_with_sae"] != pytest.approx(perf["ce_loss_without_sae"], abs=1e-3)  # not exact
    # the tiny model prepends a BOS: SAE-Lens leaves it out, so do we
    bos = tiny_model.tokenizer.bos_token_id
    n_counted = int((tokens != bos).sum())
    assert ours["misc"]["n_eval_tokens"] == n_counted < tokens.numel()


def test_attention_sink_variant_is_separate_and_labelled(tiny_model: Any, sequences: torch.Tensor) -> None:
    sae = random_sae("blocks.0.hook_resid_post", tiny_model.cfg.d_model, 96, seed=2)
    evals = generate_dashboards(tiny_model, source_from_sae("0-rand", sae), sequences[:6],
                                DashboardConfig(umap=False, eval_sequences=6, skip_positions=2)).evals
    sink = evals["excluding_attention_sink"]
    assert sink["positions_excluded"] == 2
    from sae_lens.util import get_special_token_ids

    special = torch.tensor(get_special_token_ids(tiny_model.tokenizer))
    assert sink["n_tokens"] == int((~torch.isin(sequences[:6, 2:], special)).sum())
    assert sink["ce_loss_score"] != evals["model_performance_preservation"]["ce_loss_score"]
    no_sink = generate_dashboards(tiny_model, source_from_sae("0-rand", sae), sequences[:6],
                                  DashboardConfig(umap=False, eval_sequences=6, skip_positions=0)).evals
    assert "excluding_attention_sink" not in no_sink
    assert no_sink["model_performance_preservation"] == evals["model_performance_preservation"]


@pytest.mark.slow  # SmolLM2-135M on CPU (~30 s): the case issue 18 measured (0.66 vs 0.98)
def test_demo_sae_on_smollm2_matches_saelens() -> None:
    from inference_worker.demo_sae import corpus_texts, token_stream
    from inference_worker.models import load_smollm2
    from inference_worker.saes import load_sae_from_disk

    try:
        model = load_smollm2()
        texts = corpus_texts("brown")
    except (OSError, RuntimeError) as exc:
        pytest.skip(f"SmolLM2 or the Brown corpus is not available here: {exc}")
    from pathlib import Path

    sae = load_sae_from_disk(Path(__file__).resolve().parents[2] / "inference_worker/demo/15-res-demo")
    tokens = token_stream(model, texts[:400], 8 * 128).reshape(8, 128)
    ours = generate_dashboards(model, source_from_sae("15-res-demo", sae), tokens,
                               DashboardConfig(umap=False, eval_sequences=8), batch_size=4).evals
    check_agreement(ours, saelens_core(model, sae, tokens))
    # the headline splices position 0 (the attention sink) too; the labelled variant does not
    assert ours["excluding_attention_sink"]["ce_loss_score"] > ours["model_performance_preservation"][
        "ce_loss_score"]
