"""Issue 18 #3: "ignore BOS" leaves out position 0 only where it is a BOS. A model that adds none (SmolLM2)
keeps its first real token, which is where some features fire."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from inference_worker.models import build_tiny_model
from inference_worker.ops.activations import activation_single, topk_by_token
from inference_worker.saes import source_from_sae
from tests.dashboards.conftest import identity_sae


@pytest.fixture(scope="module")
def model_and_source() -> tuple[Any, Any]:
    torch.manual_seed(0)
    return build_tiny_model(seed=0, n_layers=2, d_model=64), source_from_sae("0-id", identity_sae())


def test_topk_by_token_skips_position_zero_only_when_it_is_a_bos(model_and_source: Any) -> None:
    model, source = model_and_source
    with_bos = topk_by_token(model, source, "abc", ignore_bos=True, prepend_bos=True)
    assert with_bos.tokens.starts_with_bos
    assert [r.position for r in with_bos.results] == [1, 2, 3]  # the BOS is left out, "a" kept
    no_bos = topk_by_token(model, source, "abc", ignore_bos=True, prepend_bos=False)
    assert not no_bos.tokens.starts_with_bos
    assert [r.position for r in no_bos.results] == [0, 1, 2]  # "a" is not a BOS: it stays
    assert no_bos.results[0].token == "a"
    assert no_bos.results[0].features


def test_activation_keeps_the_first_real_token_of_a_model_without_bos(model_and_source: Any) -> None:
    model, source = model_and_source
    first = activation_single(model, "abc", source=source, index=0, prepend_bos=False, ignore_bos=True)
    plain = activation_single(model, "abc", source=source, index=0, prepend_bos=False, ignore_bos=False)
    assert first.values == plain.values  # nothing zeroed: there is no BOS
    bos = activation_single(model, "abc", source=source, index=0, prepend_bos=True, ignore_bos=True)
    assert bos.values[0] == 0.0
    assert len(bos.values) == len(plain.values) + 1
