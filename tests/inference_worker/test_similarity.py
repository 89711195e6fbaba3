from __future__ import annotations

import pytest
import torch

from inference_worker.ops import LimitError, Limits, decoder_vector, topk_by_decoder_cossim
from inference_worker.saes import SourceRegistry, source_from_vectors


def test_feature_is_its_own_nearest_neighbour(registry: SourceRegistry) -> None:
    res = topk_by_decoder_cossim(registry.get("0-vec"), index=7, num_results=5, model_id="tiny")
    assert res.features[0][0] == 7
    assert res.features[0][1] == pytest.approx(1.0, abs=1e-5)
    cos = [c for _, c in res.features]
    assert cos == sorted(cos, reverse=True)
    assert res.to_dict()["topkDecoderCossimFeatures"][0]["feature"] == {
        "model": "tiny", "source": "0-vec", "index": 7}


def test_nan_and_zero_rows_are_demoted() -> None:
    w = torch.tensor([[1.0, 0.0], [float("nan"), 1.0], [0.0, 0.0], [1.0, 1.0]])
    src = source_from_vectors("0-x", "blocks.0.hook_resid_post", w)
    res = topk_by_decoder_cossim(src, vector=[1.0, 0.0], num_results=4)
    assert [i for i, _ in res.features] == [0, 3]


def test_identity_decoder_cossim(registry: SourceRegistry) -> None:
    res = topk_by_decoder_cossim(registry.get("0-id"), index=3, num_results=2)
    assert res.features[0] == (3, pytest.approx(1.0))
    assert res.features[1][1] == pytest.approx(0.0)  # every other identity row is orthogonal


def test_cossim_limit_and_decoder_vector(registry: SourceRegistry) -> None:
    with pytest.raises(LimitError, match="cossim_results_max"):
        topk_by_decoder_cossim(registry.get("0-id"), index=0, num_results=200,
                               limits=Limits(cossim_results_max=128))
    vec = decoder_vector(registry.get("0-id"), 2)
    assert vec.to_dict()["hookName"] == "blocks.0.hook_resid_post"
    assert vec.vector[2] == 1.0
    assert sum(vec.vector) == 1.0
