"""Dashboards of a transcoder source: features come from the encoder on its input hook; the evals compare,
splice and ablate at the MLP output the transcoder predicts (not at its input hook), checked against the
same quantities computed here with plain hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from inference_worker import dashboards as dash
from inference_worker.transcoders import load_transcoder_set
from tests.inference_worker.graph_sets import write_set


def _source(model: Any, tmp_path: Path) -> Any:
    current = write_set(tmp_path / "plt", model, model_id="tiny", set_name="plt-t", d_transcoder=32,
                        threshold=0.5)
    return load_transcoder_set(current, "plt-t").sources[1]


def test_transcoder_features_read_the_input_hook(tiny_model: Any, sequences: torch.Tensor,
                                                 tmp_path: Path) -> None:
    source = _source(tiny_model, tmp_path)
    assert (source.kind, source.hook_name) == ("transcoder", "blocks.1.ln2.hook_normalized")
    cfg = dash.DashboardConfig(umap=False, eval_sequences=4, top_k=3, n_bins=2, bin_size=2)
    result = dash.generate_dashboards(tiny_model, source, sequences[:8], cfg, batch_size=4)
    _, cache = tiny_model.run_with_cache(sequences[:8], names_filter=source.hook_name)
    acts = source.encode_hook_acts(cache[source.hook_name]).detach()[:, cfg.skip_positions:]
    fired = int((acts.flatten(0, 1) > 0).any(0).sum())
    assert fired == int((~torch.as_tensor(result.is_dead)).sum())
    assert abs(float(result.max_act.max()) - float(acts.max())) < 1e-3


def test_transcoder_evals_splice_and_ablate_the_mlp_output(tiny_model: Any, sequences: torch.Tensor,
                                                            tmp_path: Path) -> None:
    source = _source(tiny_model, tmp_path)
    cfg = dash.DashboardConfig(umap=False, eval_sequences=4, top_k=3, n_bins=2, bin_size=2)
    gen = dash.DashboardGenerator(tiny_model, source, sequences.shape[1], cfg)
    dash.run_stream(gen, dash.iter_batches(sequences[:4], 4))
    evals = gen.finalize().evals
    assert evals["misc"]["spliced_hook"] == "blocks.1.hook_mlp_out"
    tokens = sequences[:4]
    mask = gen._eval_mask(tokens)
    _, cache = tiny_model.run_with_cache(tokens, names_filter=[source.hook_name, source.hook_name_out])
    x, y = cache[source.hook_name], cache[source.hook_name_out]
    recon = source.sae.decode(source.encode_hook_acts(x)).double()[mask]
    target = y.double()[mask]
    total = target.pow(2).sum(-1).mean() - target.mean(0).pow(2).sum()
    expected_ev = 1 - (target - recon).pow(2).sum(-1).mean() / total
    assert abs(evals["reconstruction_quality"]["explained_variance"] - float(expected_ev)) < 1e-4

    def zero(act: torch.Tensor, hook: Any) -> torch.Tensor:
        return torch.zeros_like(act)

    loss = tiny_model.run_with_hooks(tokens, fwd_hooks=[(source.hook_name_out, zero)], return_type="loss",
                                     loss_per_token=True)
    expected_ablation = float(loss[mask[:, :-1]].double().mean())
    assert abs(evals["model_performance_preservation"]["ce_loss_with_ablation"] - expected_ablation) < 1e-4
