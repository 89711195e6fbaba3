"""The streaming generator against brute force on tiny data (no database)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from inference_worker.dashboards import (
    DashboardConfig,
    DashboardGenerator,
    DashboardState,
    clean_token,
    generate_dashboards,
    iter_batches,
    run_stream,
)

CFG = DashboardConfig(umap=False, eval_sequences=8)


def id_result_tokenizer_specials() -> list[int]:
    from inference_worker.models import build_tiny_tokenizer

    return build_tiny_tokenizer().all_special_ids


def brute_force(model: Any, source: Any, seqs: torch.Tensor, skip: int = 2) -> torch.Tensor:
    """Feature activations [n, ctx, d_sae] from a plain full forward, masked like the generator."""
    _, cache = model.run_with_cache(seqs, names_filter=source.hook_name)
    feats = source.encode_hook_acts(cache[source.hook_name]).float()
    mask = torch.ones(seqs.shape, dtype=torch.bool)
    mask[:, :skip] = False
    mask &= ~torch.isin(seqs, torch.tensor(model.tokenizer.all_special_ids))
    return feats * mask[..., None]


@pytest.fixture(scope="module")
def id_result(tiny_model: Any, id_source: Any, sequences: torch.Tensor) -> Any:
    return generate_dashboards(tiny_model, id_source, sequences, CFG, batch_size=5)


@pytest.fixture(scope="module")
def reference(tiny_model: Any, id_source: Any, sequences: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return brute_force(tiny_model, id_source, sequences)


def test_top_examples_are_the_true_top_sequences(id_result: Any, reference: torch.Tensor) -> None:
    seq_max = reference.max(dim=1).values  # [n, d]
    examples = id_result.examples(0, id_result.d_sae)
    for f in range(id_result.d_sae):
        top = [e for e in examples[f] if e.bin_contains == -1]
        expected = seq_max[:, f][seq_max[:, f] > 0].sort(descending=True).values[:CFG.top_k]
        assert torch.allclose(torch.tensor([e.max_value for e in top]), expected, atol=1e-5)
        for e in top[:3]:
            values = torch.round(reference[e.sequence, :, f], decimals=3)
            assert torch.allclose(torch.tensor(e.values), values, atol=1e-3)
            assert e.max_value == pytest.approx(float(seq_max[e.sequence, f]), abs=1e-5)


def test_frac_nonzero_and_max_are_exact(id_result: Any, reference: torch.Tensor, sequences: Any) -> None:
    specials = torch.tensor(id_result_tokenizer_specials())
    n_counted = int((~torch.isin(sequences[:, 2:], specials)).sum())
    assert id_result.n_tokens == n_counted
    expected = (reference > 0).flatten(0, 1).sum(0).double() / n_counted
    assert torch.equal(id_result.frac_nonzero, expected)
    assert torch.allclose(id_result.max_act, reference.flatten(0, 1).max(0).values)


def test_quantile_bins_cover_zero_to_max_with_correct_shares(id_result: Any, reference: Any) -> None:
    examples = id_result.examples(0, id_result.d_sae)
    for f in range(0, id_result.d_sae, 7):
        values = reference[..., f].flatten()
        values = values[values > 0]
        bins = {}
        for e in examples[f]:
            if e.bin_contains != -1:
                bins.setdefault((e.bin_min, e.bin_max), []).append(e)
        ranges = sorted(bins)
        assert ranges[0][0] == 0.0
        assert ranges[-1][1] == pytest.approx(float(values.max()))
        for (lo, hi), group in bins.items():
            inside = int(((values > lo) & (values <= hi)).sum())
            assert abs(group[0].bin_contains * len(values) - inside) <= 1  # float edge ties
            assert len(group) == min(CFG.bin_size, inside)
            for e in group:  # the qualifying token's value lies in the bin
                assert lo - 1e-5 <= reference[e.sequence, e.qualifying_token_index, f] <= hi + 1e-5
        assert sum(g[0].bin_contains for g in bins.values()) == pytest.approx(1.0, abs=1e-6)


def test_planted_feature_dead_feature_and_logits(tiny_model: Any, plant_source: Any,
                                                 sequences: torch.Tensor) -> None:
    from tests.dashboards.conftest import LOGIT_TOKEN, PLANT_TOKEN

    res = generate_dashboards(tiny_model, plant_source, sequences, CFG, batch_size=8)
    tok = tiny_model.tokenizer.convert_tokens_to_ids(PLANT_TOKEN)
    hits = int((sequences[:, 2:] == tok).sum())
    assert res.frac_nonzero[0] == hits / res.n_tokens
    assert res.max_act[0] == pytest.approx(2.0, abs=1e-4)
    assert all(sequences[e.sequence, e.qualifying_token_index] == tok for e in res.examples(0, 1)[0])
    assert res.is_dead.tolist() == [False, True, True]
    assert res.examples(1, 3) == [[], []]
    assert res.freq_hist[1] == ([], [])
    logit_tok = tiny_model.tokenizer.convert_tokens_to_ids(LOGIT_TOKEN)
    assert int(res.pos_ids[2, 0]) == logit_tok
    assert res.token_strings([logit_tok]) == {logit_tok: LOGIT_TOKEN}
    assert res.logit_hist_heights[2].sum() == tiny_model.cfg.d_vocab


def test_resume_from_checkpoint_equals_uninterrupted_run(tiny_model: Any, id_source: Any,
                                                         sequences: Any, id_result: Any,
                                                         tmp_path: Any) -> None:
    gen = DashboardGenerator(tiny_model, id_source, sequences.shape[1], CFG)
    batches = list(iter_batches(sequences, 5))
    for b in batches[:2]:
        gen.process_batch(b)
    gen.state.save(tmp_path)
    gen.process_batch(batches[2])  # work after the checkpoint is lost with the "killed" process
    gen.state.save(tmp_path)  # a second checkpoint writes a second sparse segment
    resumed = DashboardGenerator(tiny_model, id_source, sequences.shape[1], CFG,
                                 DashboardState.load(tmp_path))
    assert resumed.state.batches_done == 3
    result = run_stream(resumed, batches).finalize()
    for key in ("count", "max_act", "frac_nonzero", "cos_indices", "pos_ids"):
        assert torch.equal(getattr(result, key), getattr(id_result, key)), key
    assert result.examples(0, result.d_sae) == id_result.examples(0, id_result.d_sae)
    assert result.evals == id_result.evals


def test_feature_memory_bound_gives_the_same_result(tiny_model: Any, id_source: Any,
                                                    sequences: Any, id_result: Any) -> None:
    small = DashboardConfig(umap=False, eval_sequences=8, max_elements=1000)
    res = generate_dashboards(tiny_model, id_source, sequences, small, batch_size=5)
    assert torch.equal(res.count, id_result.count)
    assert res.examples(0, 8) == id_result.examples(0, 8)


def test_core_evals_of_an_exact_sae(id_result: Any) -> None:
    ev = id_result.evals
    assert ev["reconstruction_quality"]["explained_variance"] == pytest.approx(1.0, abs=1e-6)
    assert ev["reconstruction_quality"]["mse"] == pytest.approx(0.0, abs=1e-8)
    perf = ev["model_performance_preservation"]
    assert perf["ce_loss_with_sae"] == pytest.approx(perf["ce_loss_without_sae"], abs=1e-5)
    assert perf["ce_loss_score"] == pytest.approx(1.0, abs=1e-3)
    assert ev["sparsity"]["l0"] == pytest.approx(float(id_result.count.sum()) / id_result.n_tokens)
    assert ev["misc"]["frac_dead"] == float(id_result.is_dead.double().mean())


@pytest.mark.slow  # numba compiles UMAP on first use (~15 s)
def test_raw_vectors_get_dashboards_and_a_seeded_umap(tiny_model: Any, sequences: Any) -> None:
    from inference_worker.saes import source_from_vectors

    vectors = torch.randn(32, 64, generator=torch.Generator().manual_seed(5))
    source = source_from_vectors("0-vec", "blocks.0.hook_resid_post", vectors)
    cfg = DashboardConfig(umap=True, eval_sequences=4, umap_n_neighbors=5)
    a = generate_dashboards(tiny_model, source, sequences[:8], cfg, batch_size=4)
    b = generate_dashboards(tiny_model, source, sequences[:8], cfg, batch_size=4)
    assert a.umap_xy is not None
    assert a.umap_xy.shape == (32, 2)
    assert torch.equal(a.umap_xy, b.umap_xy)
    assert torch.equal(a.umap_cluster, b.umap_cluster)
    assert len(a.examples(0, 1)[0]) >= CFG.top_k  # dot products: most tokens are positive for some
    assert "reconstruction_quality" not in a.evals  # no decoder to reconstruct with


def test_clean_token_removes_bpe_artifacts() -> None:
    assert clean_token("Ġhello") == " hello"
    assert clean_token("ĊĊ") == "\n\n"
    assert clean_token("▁world") == " world"


def test_logit_stats_numba_kernel_matches_torch(tiny_model: Any, id_source: Any, sequences: Any,
                                               monkeypatch: Any) -> None:
    """The compiled one-pass logit kernel and the torch fallback give identical statistics."""
    from inference_worker import dashboards as dash

    gen = DashboardGenerator(tiny_model, id_source, sequences.shape[1], CFG)
    fast = dash._logit_stats(gen)
    monkeypatch.setitem(dash._KERNELS, "logits", None)
    slow = dash._logit_stats(gen)
    for key in fast:
        assert torch.equal(fast[key], slow[key]), key
