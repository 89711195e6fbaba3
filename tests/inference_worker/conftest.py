"""Tiny models and sources built in code with fixed seeds; no hub, no database."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from inference_worker.models import build_tiny_model
from inference_worker.saes import SourceRegistry, source_from_sae, source_from_vectors
from tests.factories import identity_sae

torch.set_num_threads(min(2, torch.get_num_threads()))

D_MODEL = 64


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    """Read-only tiny model (2 layers, d_model 64, char-level tokenizer with ChatML)."""
    return build_tiny_model(seed=0, n_layers=2, d_model=D_MODEL)


@pytest.fixture(scope="session")
def id_sae() -> Any:
    return identity_sae("blocks.0.hook_resid_post")


@pytest.fixture(scope="session")
def registry(id_sae: Any) -> SourceRegistry:
    """Set "id": identity SAEs at layers 0 and 1. Set "vec": random vectors at layers 0 and 1."""
    g = torch.Generator().manual_seed(1)
    return SourceRegistry([
        source_from_sae("0-id", id_sae),
        source_from_sae("1-id", identity_sae("blocks.1.hook_resid_post")),
        source_from_vectors("0-vec", "blocks.0.hook_resid_post", torch.randn(32, D_MODEL,
                                                                             generator=g)),
        source_from_vectors("1-vec", "blocks.1.hook_resid_post", torch.randn(32, D_MODEL,
                                                                             generator=g)),
    ])


def resid(model: Any, text: str, hook: str, prepend_bos: bool = True) -> torch.Tensor:
    """Reference activations ``[pos, d]`` via a plain TransformerLens run."""
    from inference_worker.ops import tokenize

    toks = tokenize(model, text, prepend_bos)
    _, cache = model.run_with_cache(toks.tensor("cpu"))
    return cache[hook][0]
