"""Tiny model + SAEs with known structure, built in code (no hub); a small text folder as dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from inference_worker.models import build_tiny_model
from inference_worker.saes import source_from_sae

torch.set_num_threads(min(2, torch.get_num_threads()))

D_MODEL = 64
PLANT_TOKEN = "e"  # feature 0 of the planted SAE fires exactly on this character
LOGIT_TOKEN = "z"  # feature 2's decoder is this token's unembedding direction
TEXT = (
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs!\n\n"
    "How vexingly quick daft zebras jump; sphinx of black quartz, judge my vow.\n\n"
    "A wizard's job is to vex chumps quickly in fog. Amazingly few discotheques provide jukeboxes.\n\n"
)


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    return build_tiny_model(seed=0, n_layers=2, d_model=D_MODEL)


def _standard_sae(hook: str, w_enc: torch.Tensor, b_enc: torch.Tensor, w_dec: torch.Tensor) -> Any:
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    cfg = StandardSAEConfig(d_in=w_enc.shape[0], d_sae=w_enc.shape[1],
                            metadata=SAEMetadata(hook_name=hook, model_name="tiny"))
    sae = StandardSAE(cfg)
    with torch.no_grad():
        sae.W_enc.copy_(w_enc)
        sae.b_enc.copy_(b_enc)
        sae.W_dec.copy_(w_dec)
        sae.b_dec.zero_()
    return sae.eval()


def identity_sae(hook: str = "blocks.0.hook_resid_post") -> Any:
    """features = [relu(x), relu(-x)] and an exact decoder: every statistic is checkable by hand."""
    eye = torch.eye(D_MODEL)
    return _standard_sae(hook, torch.cat([eye, -eye], 1), torch.zeros(2 * D_MODEL),
                         torch.cat([eye, -eye], 0))


def planted_sae(model: Any) -> Any:
    """At hook_resid_pre of block 0 (= the token embedding): f0 fires only on PLANT_TOKEN (value 2),
    f1 is dead, f2 never fires but its decoder points along LOGIT_TOKEN's unembedding."""
    tok = model.tokenizer.convert_tokens_to_ids(PLANT_TOKEN)
    logit_tok = model.tokenizer.convert_tokens_to_ids(LOGIT_TOKEN)
    emb = model.W_E[tok].detach()
    w_enc = torch.zeros(D_MODEL, 3)
    w_enc[:, 0] = 4 * emb / emb.pow(2).sum()
    b_enc = torch.tensor([-2.0, -1.0, -1.0])
    w_dec = torch.zeros(3, D_MODEL)
    w_dec[0] = emb / emb.norm()
    w_dec[1] = torch.randn(D_MODEL, generator=torch.Generator().manual_seed(3))
    w_dec[2] = model.W_U[:, logit_tok].detach()
    return _standard_sae("blocks.0.hook_resid_pre", w_enc, b_enc, w_dec)


@pytest.fixture(scope="session")
def id_source() -> Any:
    return source_from_sae("0-id", identity_sae())


@pytest.fixture(scope="session")
def plant_source(tiny_model: Any) -> Any:
    return source_from_sae("0-plant", planted_sae(tiny_model))


@pytest.fixture(scope="session")
def text_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("texts")
    (root / "a.txt").write_text(TEXT * 4)
    (root / "sub").mkdir()
    (root / "sub" / "b.md").write_text(TEXT[::-1] * 4)
    return root


@pytest.fixture(scope="session")
def sequences(tiny_model: Any, text_dir: Path) -> torch.Tensor:
    from inference_worker.datasets import load_sequences

    return load_sequences(tiny_model, f"file:{text_dir}", n_sequences=24, context_size=32)


@pytest.fixture(scope="session")
def worker_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inference-worker config (tiny model + the identity SAE on disk) for --inline and workers."""
    root = tmp_path_factory.mktemp("worker")
    identity_sae().save_model(root / "sae")
    cfg = {"model_id": "tiny", "model_source": "tiny", "device": "cpu",
           "source_sets": [{"name": "id", "sources": [{"id": "0-id", "path": str(root / "sae")}]}]}
    path = root / "worker.json"
    path.write_text(json.dumps(cfg))
    return path
