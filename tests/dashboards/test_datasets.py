"""Dataset names -> deterministic fixed-length token sequences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from inference_worker.datasets import DatasetError, DatasetSpec, load_sequences


def test_local_folder_gives_deterministic_sequences_with_bos(tiny_model: Any, text_dir: Path) -> None:
    a = load_sequences(tiny_model, f"file:{text_dir}", n_sequences=5, context_size=16)
    b = load_sequences(tiny_model, str(text_dir), n_sequences=5, context_size=16)
    assert a.shape == (5, 16)
    assert torch.equal(a, b)
    assert (a[:, 0] == tiny_model.tokenizer.bos_token_id).all()
    assert tiny_model.tokenizer.decode(a[0, 1:]) == "The quick brown"


def test_jsonl_rows_use_their_text_field(tiny_model: Any, tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"text": "abcdefgh"}\n{"text": "ijklmnop"}\n')
    seqs = load_sequences(tiny_model, f"file:{tmp_path}", n_sequences=1, context_size=6,
                          prepend_bos=False)
    assert tiny_model.tokenizer.decode(seqs[0]) == "abcdef"


@pytest.mark.parametrize(("name", "kind"), [("corpus:brown", "corpus"), ("shakespeare", "corpus"),
                                            ("hf:NeelNanda/pile-10k:train", "hf")])
def test_dataset_names_parse(name: str, kind: str) -> None:
    assert DatasetSpec.parse(name).kind == kind


def test_bad_names_and_offline_hub_give_clear_errors(tiny_model: Any, monkeypatch: Any) -> None:
    with pytest.raises(DatasetError, match="not a corpus"):
        DatasetSpec.parse("no-such-thing")
    with pytest.raises(DatasetError, match="unknown corpus"):
        DatasetSpec.parse("corpus:nope")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DatasetError, match="without network use a local folder"):
        load_sequences(tiny_model, "hf:someone/some-dataset", n_sequences=1, context_size=8)
