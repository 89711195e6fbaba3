from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from inference_worker.saes import (
    SourceRegistry,
    UnknownSourceError,
    hook_layer,
    load_sae_from_disk,
    source_from_sae,
    source_from_vectors,
)


def test_hook_layer() -> None:
    assert hook_layer("blocks.7.hook_resid_post") == 7
    assert hook_layer("blocks.3.attn.hook_z") == 3
    assert hook_layer("hook_embed") == -1
    assert hook_layer("ln_final.hook_normalized") is None


def test_sae_disk_roundtrip_keeps_hook_and_weights(id_sae: Any, tmp_path: Path) -> None:
    id_sae.save_model(tmp_path / "sae")
    src = source_from_sae("0-id", load_sae_from_disk(tmp_path / "sae"))
    assert src.hook_name == "blocks.0.hook_resid_post"
    assert torch.equal(src.W_dec, id_sae.W_dec)
    x = torch.randn(3, 64)
    assert torch.allclose(src.encode(x)[:, :64], x.relu())


def test_missing_sae_folder_is_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cfg\.json"):
        load_sae_from_disk(tmp_path)


def test_registry_selects_sources_of_a_set(registry: SourceRegistry) -> None:
    assert [s.id for s in registry.in_set("id")] == ["0-id", "1-id"]
    assert [s.id for s in registry.in_set("id", ["1-id"])] == ["1-id"]
    assert registry.set_names == ["id", "vec"]
    with pytest.raises(UnknownSourceError, match="not in set"):
        registry.in_set("id", ["0-vec"])
    with pytest.raises(UnknownSourceError, match="not loaded"):
        registry.get("9-nope")


def test_registry_refuses_duplicates() -> None:
    src = source_from_vectors("0-v", "blocks.0.hook_resid_post", torch.ones(64))
    with pytest.raises(ValueError, match="duplicate"):
        SourceRegistry([src, src])


def test_hub_sae_offline_error_is_clear() -> None:
    from inference_worker.saes import load_sae_pretrained

    with pytest.raises(RuntimeError, match="use a local folder"):
        load_sae_pretrained("gpt2-small-res-jb", "blocks.0.hook_resid_pre")
