"""What defines a trained transcoder set, and where its versions live on disk.

No torch: the web side validates training parameters with it (features.transcoder_training); the
trainer is inference_worker.training_transcoders."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TranscoderTrainConfig:
    """What defines a trained set (hashed into its version) plus knobs that do not change it."""

    model_id: str = "smollm2-135m-instruct"
    set_name: str = "plt-demo"
    corpus: str = "brown"
    n_tokens: int = 81_920  # training tokens (before dropping sink positions): 160 batches of 512
    eval_tokens: int = 4_096  # held out, from the end of the token stream
    context_size: int = 128
    batch_seqs: int = 4  # contexts per step (512 tokens)
    steps_per_batch: int = 2  # optimiser steps per forward batch (the model forward costs as much)
    d_transcoder: int = 768
    k: int = 16
    lr: float = 2e-3
    aux_k: int = 32
    aux_coef: float = 1 / 32
    dead_tokens: int = 8_192  # a latent not fired for this many tokens (16 steps) is dead (AuxK)
    skip_positions: int = 2
    seed: int = 0
    model_dtype: str = "bfloat16"  # of the model forward that produces the training activations
    splice_eval_tokens: int = 512  # per-layer splice metrics use the first this many eval tokens
    # not part of the version:
    checkpoint_every: int = field(default=25, compare=False)
    autocast: bool | None = field(default=None, compare=False)  # None: bf16 autocast on cuda only

    def __post_init__(self) -> None:
        if self.k < 1 or self.k >= self.d_transcoder:
            raise ValueError("k must be in [1, d_transcoder)")
        if self.n_tokens < self.context_size * self.batch_seqs:
            raise ValueError("n_tokens must cover at least one batch")
        if self.skip_positions >= self.context_size:
            raise ValueError("skip_positions must be < context_size")
        if self.eval_tokens < self.context_size:
            raise ValueError("eval_tokens must be >= context_size")
        if self.steps_per_batch < 1 or self.d_transcoder < 2 or self.lr <= 0:
            raise ValueError("steps_per_batch and d_transcoder must be >= 1 / 2, lr > 0")

    @property
    def version(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k not in ("checkpoint_every", "autocast")}
        data["format"] = 1
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def n_batches(self) -> int:
        return self.n_tokens // (self.context_size * self.batch_seqs)

    @property
    def n_steps(self) -> int:
        return self.n_batches * self.steps_per_batch

    def source_id(self, layer: int) -> str:
        return f"{layer}-{self.set_name}"


def default_root() -> Path:
    return Path(os.environ.get("NP_CACHE_DIR") or Path.home() / ".cache" / "neuronpedia")


def set_root(model_id: str, set_name: str, root: Path | None = None) -> Path:
    """``~/.cache/neuronpedia/transcoders/<model>/<set>``: holds ``versions/<v>/`` and ``current``."""
    return (root or default_root()) / "transcoders" / model_id / set_name


def version_dir(cfg: TranscoderTrainConfig, root: Path | None = None) -> Path:
    return set_root(cfg.model_id, cfg.set_name, root) / "versions" / cfg.version


def current_dir(model_id: str, set_name: str, root: Path | None = None) -> Path:
    return set_root(model_id, set_name, root) / "current"


def is_complete(path: Path) -> bool:
    return (path / ".complete").exists()


def config_from_params(params: dict[str, Any], model_id: str) -> TranscoderTrainConfig:
    """A config from a job's params (unknown keys ignored; ValueError on bad values)."""
    names = {f.name for f in fields(TranscoderTrainConfig)}
    kwargs = {k: v for k, v in params.items() if k in names}
    kwargs["model_id"] = model_id
    return TranscoderTrainConfig(**kwargs)
