"""Transcoder sets for graph tests, written in the trainer's own format (training_transcoders.save_set:
``versions/<v>/saelens/{L}-NAME`` + ``circuit_tracer/config.yaml`` + ``.complete`` + a ``current`` link).

Random JumpReLU transcoders: encoder columns ~ N(0, 1/d_model) so that on ``ln2.hook_normalized`` (unit
RMS) a pre-activation is about N(0, 1); the threshold keeps a few features per token active, like a
trained sparse set, which keeps attribution fast."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def random_layers(n_layers: int, d_model: int, d_transcoder: int = 64, threshold: float = 1.5,
                  dec_norm: float = 1.0,
                  seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(n_layers):
        w_dec = torch.randn(d_transcoder, d_model, generator=g)
        layers.append({
            "W_enc": torch.randn(d_model, d_transcoder, generator=g) / d_model ** 0.5,
            "b_enc": torch.zeros(d_transcoder),
            "W_dec": w_dec / w_dec.norm(dim=-1, keepdim=True) * dec_norm,
            "b_dec": torch.zeros(d_model),
            "threshold": torch.full((d_transcoder,), threshold),
        })
    return layers


def write_set(root: Path, model: Any, *, model_id: str = "tiny", set_name: str = "plt-demo",
              d_transcoder: int = 64, threshold: float = 1.5, dec_norm: float = 1.0, seed: int = 0,
              layers: list[dict[str, torch.Tensor]] | None = None) -> Path:
    """Write a complete set under ``root/versions/<v>`` with ``root/current`` pointing at it; returns
    the ``current`` link (what a worker config names)."""
    from inference_worker.training_transcoders import TrainResult, TranscoderTrainConfig, save_set

    cfg = TranscoderTrainConfig(model_id=model_id, set_name=set_name, d_transcoder=d_transcoder,
                                k=min(4, d_transcoder - 1), seed=seed)
    out = root / "versions" / f"{cfg.version}-{seed}-{threshold}-{dec_norm}"
    out.mkdir(parents=True, exist_ok=True)
    layers = layers or random_layers(model.cfg.n_layers, model.cfg.d_model, d_transcoder,
                                     threshold=threshold, dec_norm=dec_norm, seed=seed)
    result = TrainResult(path=str(out), version=cfg.version, layers=[], replacement={}, seconds={},
                         resumed_from_step=0)
    save_set(out, layers, cfg, model, result, [])
    return root / "current"
