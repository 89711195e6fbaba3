from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from inference_worker.config import WorkerConfig
from inference_worker.ops import Limits
from inference_worker.runtime import LRUCache, clear_caches, get_worker, pick_device


def test_pick_device_prefers_cuda_when_available() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto") == expected
    assert pick_device("cpu") == "cpu"


def test_lru_evicts_oldest() -> None:
    evicted: list[str] = []
    cache = LRUCache(2, on_evict=evicted.append)
    for key in ("a", "b", "a", "c"):
        cache.get_or_load(key, lambda k=key: k.upper())
    assert evicted == ["B"]
    assert len(cache) == 2


def test_get_worker_loads_model_and_sources_once(id_sae: Any, tmp_path: Path) -> None:
    id_sae.save_model(tmp_path / "sae0")
    cfg = WorkerConfig.from_dict({
        "model_id": "tiny", "model_source": "tiny", "device": "cpu", "token_limit": 32,
        "source_sets": [{"name": "id",
                         "sources": [{"id": "0-id", "path": str(tmp_path / "sae0")}]}],
    })
    try:
        w1, w2 = get_worker(cfg), get_worker(cfg)
        assert w1.model is w2.model
        assert w1.registry.get("0-id") is w2.registry.get("0-id")
        assert w1.registry.get("0-id").hook_name == "blocks.0.hook_resid_post"
        assert Limits.from_config(cfg).token_limit == 32
    finally:
        clear_caches()


def test_get_worker_rejects_source_with_unknown_hook(tmp_path: Path) -> None:
    from tests.factories import identity_sae

    identity_sae("blocks.9.hook_resid_post").save_model(tmp_path / "s")
    cfg = WorkerConfig(model_id="tiny2", model_source="tiny", device="cpu")
    cfg = WorkerConfig.from_dict({**cfg.__dict__, "source_sets": [
        {"name": "x", "sources": [{"id": "9-x", "path": str(tmp_path / "s")}]}]})
    try:
        with pytest.raises(ValueError, match="lacks"):
            get_worker(cfg)
    finally:
        clear_caches()
