"""SAEDashboard (PyPI ``sae-dashboard``) on the same model weights, SAE and tokens as our generator.

Runs in SAEDashboard's OWN venv (it needs transformer-lens < 3 and transformers < 4.57, so it cannot
share the project's venv), as a subprocess of bench/dashboard_bench.py:

    ~/.cache/neuronpedia/sae-dashboard-venv/bin/python bench/saedashboard_baseline.py \\
        --model-dir DIR --tl-config cfg.json --sae-dir SAE_DIR --tokens tokens.pt --dtype bfloat16

It does what ``NeuronpediaRunner.run`` does after loading (that runner only loads models by hub name):
feature batches of ``--features-at-a-time`` through ``SaeVisRunner`` with the model activations cached
on disk after the first batch, each batch converted to Neuronpedia's JSON by ``NeuronpediaConverter``
and written out. The model is built in TransformerLens 2.x from the same converted state dict and
config as ours (inference_worker/models.py), the SAE loads with SAE-Lens from the same folder, and the
tokens are the exact tensor our generator streams. Prints one JSON line: {"seconds": ..., ...}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def load_model(model_dir: Path, tl_config: dict, dtype: str):  # noqa: ANN201
    import torch
    from sae_lens import HookedSAETransformer
    from safetensors.torch import load_file
    from transformer_lens import HookedTransformerConfig
    from transformers import PreTrainedTokenizerFast

    names = {f.name for f in dataclasses.fields(HookedTransformerConfig)}
    cfg = {k: v for k, v in tl_config.items() if k in names}
    cfg.update(dtype=getattr(torch, dtype), device="cpu", init_weights=False)
    # saved by transformers 5 (class "TokenizersBackend"): the fast tokenizer class reads it as is
    tokenizer = PreTrainedTokenizerFast.from_pretrained(model_dir / "tokenizer")
    tokenizer.init_kwargs.setdefault("name_or_path", "local")
    tokenizer.init_kwargs["add_bos_token"] = True  # TransformerLens must not re-load it by name
    model = HookedSAETransformer(HookedTransformerConfig(**cfg), tokenizer=tokenizer,
                                 move_to_device=False)
    model.load_and_process_state_dict(
        load_file(str(model_dir / "model.safetensors")), fold_ln=False, center_writing_weights=False,
        center_unembed=False, fold_value_biases=False, refactor_factored_attn_matrices=False)
    return model.to(getattr(torch, dtype)).eval()


def vocab_dict(model) -> dict[int, str]:  # noqa: ANN001
    """NeuronpediaRunner.get_vocab_dict without the runner."""
    from sae_dashboard.neuronpedia.neuronpedia_runner import HTML_ANOMALIES, OUT_OF_RANGE_TOKEN

    out = {}
    for k, v in model.tokenizer.vocab.items():
        for raw, clean in HTML_ANOMALIES.items():
            k = k.replace(raw, clean)
        out[v] = k
    for i in range(len(out), model.cfg.d_vocab):
        out[i] = OUT_OF_RANGE_TOKEN
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--tl-config", type=Path, required=True, help="our HookedTransformerConfig as JSON")
    p.add_argument("--sae-dir", type=Path, required=True)
    p.add_argument("--tokens", type=Path, required=True, help="int tensor [n, ctx] saved with torch.save")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--features-at-a-time", type=int, default=128, help="NeuronpediaRunner's default")
    p.add_argument("--prompts-in-forward-pass", type=int, default=32)
    p.add_argument("--n-features", type=int, default=0, help="0 = all")
    p.add_argument("--skip-positions", type=int, default=2)
    p.add_argument("--top-k", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--outputs-dir", type=Path, default=None)
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from sae_dashboard.components_config import (
        ActsHistogramConfig,
        Column,
        FeatureTablesConfig,
        LogitsHistogramConfig,
        LogitsTableConfig,
        SequencesConfig,
    )
    from sae_dashboard.layout import SaeVisLayoutConfig
    from sae_dashboard.neuronpedia.neuronpedia_converter import NeuronpediaConverter
    from sae_dashboard.neuronpedia.neuronpedia_runner_config import NeuronpediaRunnerConfig
    from sae_dashboard.sae_vis_data import SaeVisConfig
    from sae_dashboard.sae_vis_runner import SaeVisRunner
    from sae_lens import SAE

    t_load = time.perf_counter()
    model = load_model(args.model_dir, json.loads(args.tl_config.read_text()), args.dtype)
    sae = SAE.load_from_disk(str(args.sae_dir), device="cpu")
    tokens = torch.load(args.tokens).long()
    t_load = time.perf_counter() - t_load
    out_dir = args.outputs_dir or Path(tempfile.mkdtemp(prefix="saedashboard-"))
    shutil.rmtree(out_dir, ignore_errors=True)
    (out_dir / "cached_activations").mkdir(parents=True)
    d_sae = sae.cfg.d_sae if not args.n_features else min(args.n_features, sae.cfg.d_sae)
    features = list(range(d_sae))
    batches = [features[i:i + args.features_at_a_time] for i in range(0, d_sae, args.features_at_a_time)]
    np_cfg = NeuronpediaRunnerConfig(
        sae_set="bench", sae_path=str(args.sae_dir), outputs_dir=str(out_dir), from_local_sae=True,
        n_prompts_total=tokens.shape[0], n_tokens_in_prompt=tokens.shape[1],
        n_prompts_in_forward_pass=args.prompts_in_forward_pass,
        n_features_at_a_time=args.features_at_a_time, top_acts_group_size=args.top_k,
        model_dtype=args.dtype, sae_dtype="float32", model_id="smollm2-135m-instruct",
        layer=int(sae.cfg.metadata.hook_name.split(".")[1]),
        ignore_positions=list(range(args.skip_positions)))
    vocab = vocab_dict(model)
    tok = model.tokenizer
    t0 = time.perf_counter()
    with torch.no_grad():
        sae.fold_W_dec_norm()  # as NeuronpediaRunner does once before the batches
        for i, feats in enumerate(batches):
            layout = SaeVisLayoutConfig(columns=[Column(
                SequencesConfig(stack_mode="stack-all", buffer=None, compute_buffer=True,
                                n_quantiles=np_cfg.n_quantiles,
                                top_acts_group_size=np_cfg.top_acts_group_size,
                                quantile_group_size=np_cfg.quantile_group_size),
                ActsHistogramConfig(), LogitsHistogramConfig(), LogitsTableConfig(),
                FeatureTablesConfig(n_rows=3))])
            vis_cfg = SaeVisConfig(
                hook_point=sae.cfg.metadata.hook_name, features=feats,
                minibatch_size_features=args.features_at_a_time,
                minibatch_size_tokens=args.prompts_in_forward_pass,
                quantile_feature_batch_size=np_cfg.quantile_feature_batch_size, verbose=False,
                device="cpu", feature_centric_layout=layout, perform_ablation_experiments=False,
                dtype="float32", cache_dir=out_dir / "cached_activations",
                ignore_tokens={t for t in (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id)
                               if t is not None},
                ignore_positions=np_cfg.ignore_positions or [])
            data = SaeVisRunner(vis_cfg).run(encoder=sae, model=model, tokens=tokens)
            (out_dir / f"batch-{i}.json").write_text(
                NeuronpediaConverter.convert_to_np_json(model, data, np_cfg, vocab))
            print(f"batch {i + 1}/{len(batches)} {time.perf_counter() - t0:.1f}s", file=sys.stderr,
                  flush=True)
    seconds = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in out_dir.glob("batch-*.json"))
    if args.outputs_dir is None:
        shutil.rmtree(out_dir, ignore_errors=True)
    print(json.dumps({"seconds": seconds, "load_seconds": t_load, "features": d_sae,
                      "tokens": tokens.numel(), "batches": len(batches), "json_bytes": size,
                      "dtype": args.dtype, "pid": os.getpid()}))


if __name__ == "__main__":
    main()
