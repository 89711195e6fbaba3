"""Transcoder sets: loaded from SAE-Lens folders or circuit-tracer configs, served as sources and as a
circuit-tracer ``TranscoderSet`` for attribution graphs.

Accepted ``path`` forms for a set named ``NAME``:

- a folder holding ``saelens/{L}-NAME/`` (what ``training_transcoders`` writes; ``current`` link ok),
- a folder holding SAE-Lens transcoder folders ``{L}-NAME/`` (``cfg.json`` + ``sae_weights.safetensors``;
  ``Transcoder``, ``SkipTranscoder``, ``JumpReLUTranscoder``, ``JumpReLUSkipTranscoder``),
- a circuit-tracer transcoder-set ``config.yaml`` (``model_kind: transcoder_set``, local paths), or a
  folder with ``config.yaml`` / ``circuit_tracer/config.yaml``.

Each layer becomes a ``Source`` (kind ``transcoder``) reading the base model's MLP-input hook
(``blocks.L.ln2.hook_normalized`` or ``blocks.L.hook_resid_mid``) so the usual dashboard/activation
operations work on transcoder features; the circuit-tracer modules share the same weight storage.

No Django imports: pure library code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from inference_worker.saes import Source, load_sae_from_disk, parse_source_id

# Input hooks are used as-is by both sides (circuit-tracer resolves them relative to a block). Note
# TransformerLens' RMSNorm ``hook_normalized`` is x/rms *before* the norm weight, so it is NOT the
# MLP's input ("mlp.hook_in" = hook_normalized * ln2.w): sets reading "mlp.hook_in" have no hook in
# the plain model and are refused here.
_TL_INPUT_HOOKS = ("ln2.hook_normalized", "hook_resid_mid")
_CT_FROM_TL_OUT = {"hook_mlp_out": "mlp.hook_out"}
_TL_FROM_CT_OUT = {"mlp.hook_out": "hook_mlp_out", "hook_mlp_out": "hook_mlp_out"}
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")


class TranscodersNotReady(LookupError):  # noqa: N818 - reads as a state, handled as a 404/409
    """The configured transcoder set is not on disk (yet): e.g. still training."""


def shim_circuit_tracer() -> None:
    """circuit-tracer 0.5 imports HF_HUB_ENABLE_HF_TRANSFER, which huggingface-hub >= 1 removed."""
    import huggingface_hub.constants as hub_constants  # noqa: PLC0415

    if not hasattr(hub_constants, "HF_HUB_ENABLE_HF_TRANSFER"):
        hub_constants.HF_HUB_ENABLE_HF_TRANSFER = False  # type: ignore[attr-defined]


@dataclass(frozen=True, eq=False)
class LoadedTranscoderSet:
    name: str
    path: str  # resolved (a versioned folder when loaded through a `current` link)
    sources: tuple[Source, ...]  # one per layer, in layer order
    ct_set: Any  # circuit_tracer TranscoderSet
    input_hook: str  # relative to a block, e.g. "ln2.hook_normalized"
    output_hook: str

    @property
    def n_layers(self) -> int:
        return len(self.sources)

    @property
    def d_transcoder(self) -> int:
        return self.sources[0].d_sae


def _split_block_hook(hook: str) -> tuple[int, str]:
    m = _BLOCK.match(hook)
    if not m:
        raise ValueError(f"transcoder hook {hook!r} is not inside a block")
    return int(m.group(1)), m.group(2)


def resolve_layout(path: str | Path, name: str) -> tuple[str, Path]:
    """('saelens', folder of {L}-NAME folders) or ('circuit_tracer', config.yaml)."""
    p = Path(path).expanduser()
    if p.is_file():
        return "circuit_tracer", p
    if not p.exists():
        raise TranscodersNotReady(f"transcoder set {name!r} is not available at {p} (not trained yet?)")
    if (p / "saelens").is_dir():
        return "saelens", p / "saelens"
    if any(p.glob(f"*-{name}/cfg.json")):
        return "saelens", p
    for cand in (p / "config.yaml", p / "circuit_tracer" / "config.yaml"):
        if cand.exists():
            return "circuit_tracer", cand
    raise TranscodersNotReady(f"no transcoder set {name!r} in {p}")


def load_transcoder_set(path: str | Path, name: str, device: str = "cpu",
                        dtype: str = "float32") -> LoadedTranscoderSet:
    layout, where = resolve_layout(path, name)
    if layout == "saelens":
        return _from_saelens(where, name, device, dtype)
    return _from_circuit_tracer(where, name, device, dtype)


def _from_saelens(folder: Path, name: str, device: str, dtype: str) -> LoadedTranscoderSet:
    shim_circuit_tracer()
    from circuit_tracer.transcoder import TranscoderSet  # noqa: PLC0415

    by_layer: dict[int, Path] = {}
    for cfg in folder.glob("*/cfg.json"):
        sid = parse_source_id(cfg.parent.name)
        if sid.set_name == name and not sid.suffix:
            by_layer[sid.layer] = cfg.parent
    if not by_layer:
        raise TranscodersNotReady(f"no {{layer}}-{name} transcoder folders in {folder}")
    if sorted(by_layer) != list(range(len(by_layer))):
        raise ValueError(f"transcoder set {name}: layers {sorted(by_layer)} are not 0..n-1")
    sources, tcs, in_hooks, out_hooks = [], {}, set(), set()
    for layer in range(len(by_layer)):
        sae = load_sae_from_disk(by_layer[layer], device, dtype)
        if not hasattr(sae.cfg, "d_out"):
            raise ValueError(f"{by_layer[layer]} is an SAE, not a transcoder")
        meta = sae.cfg.metadata
        hook_in = str(meta.hook_name)
        hook_out = str(getattr(meta, "hook_name_out", None) or f"blocks.{layer}.hook_mlp_out")
        lin, suffix_in = _split_block_hook(hook_in)
        lout, suffix_out = _split_block_hook(hook_out)
        if lin != layer or lout != layer:
            raise ValueError(f"{by_layer[layer].name}: hooks {hook_in}/{hook_out} are not layer {layer}")
        if suffix_in not in _TL_INPUT_HOOKS:
            raise ValueError(f"{by_layer[layer].name}: unsupported transcoder input hook {hook_in}")
        in_hooks.add(suffix_in)
        out_hooks.add(_CT_FROM_TL_OUT.get(suffix_out, suffix_out))
        tcs[layer] = single_layer_from_saelens(sae, layer)
        sources.append(Source(id=f"{layer}-{name}", hook_name=hook_in, W_dec=sae.W_dec.data,
                              encode=sae.encode, kind="transcoder", sae=sae, hook_name_out=hook_out))
    if len(in_hooks) != 1 or len(out_hooks) != 1:
        raise ValueError(f"transcoder set {name}: layers read/write different hooks "
                         f"{sorted(in_hooks)} / {sorted(out_hooks)}")
    (hin,), (hout,) = in_hooks, out_hooks
    ct = TranscoderSet(tcs, feature_input_hook=hin, feature_output_hook=hout, scan=name)
    return LoadedTranscoderSet(name, str(folder.resolve()), tuple(sources), ct, hin, hout)


def single_layer_from_saelens(sae: Any, layer: int) -> Any:
    """A circuit-tracer SingleLayerTranscoder sharing the SAE-Lens transcoder's weight storage."""
    shim_circuit_tracer()
    from circuit_tracer.transcoder import SingleLayerTranscoder  # noqa: PLC0415
    from circuit_tracer.transcoder.activation_functions import JumpReLU  # noqa: PLC0415

    arch = sae.cfg.architecture()
    if "jumprelu" in arch:
        act: Any = JumpReLU(sae.threshold.data, 0.1)
    elif arch in ("transcoder", "skip_transcoder"):
        act = torch.nn.functional.relu
    else:
        raise ValueError(f"unsupported transcoder architecture {arch!r}")
    skip = getattr(sae, "W_skip", None) is not None
    with torch.device("meta"):
        tc = SingleLayerTranscoder(sae.cfg.d_in, sae.cfg.d_sae, act, layer, skip_connection=skip)
    P = torch.nn.Parameter  # noqa: N806
    tc.W_enc = P(sae.W_enc.data.T, requires_grad=False)  # a view: no copy
    tc.W_dec = P(sae.W_dec.data, requires_grad=False)
    tc.b_enc = P(sae.b_enc.data, requires_grad=False)
    tc.b_dec = P(sae.b_dec.data, requires_grad=False)
    if skip:
        tc.W_skip = P(sae.W_skip.data, requires_grad=False)
    return tc


def _from_circuit_tracer(config_path: Path, name: str, device: str, dtype: str
                         ) -> LoadedTranscoderSet:
    import yaml  # noqa: PLC0415

    shim_circuit_tracer()
    from circuit_tracer.utils.hf_utils import load_transcoders  # noqa: PLC0415

    config = yaml.safe_load(config_path.read_text())
    if config.get("model_kind") != "transcoder_set":
        raise ValueError(f"{config_path}: only model_kind transcoder_set is supported here")
    base = config_path.parent
    paths = [p if p.startswith("hf://") or Path(p).is_absolute() else str(base / p)
             for p in config["transcoders"]]
    config = {**config, "transcoders": paths, "scan": config.get("scan") or name,
              "repo_id": config.get("repo_id", "")}
    ct = load_transcoders(config, device=torch.device(device), dtype=getattr(torch, dtype),
                          lazy_encoder=False, lazy_decoder=False)
    hin, hout = ct.feature_input_hook, ct.feature_output_hook
    if hin not in _TL_INPUT_HOOKS:
        raise ValueError(f"{config_path}: unsupported feature_input_hook {hin!r} "
                         f"(supported: {', '.join(_TL_INPUT_HOOKS)})")
    tl_in = hin
    tl_out = _TL_FROM_CT_OUT.get(hout, hout)
    sources = []
    for layer, tc in enumerate(ct):
        for p in tc.parameters():
            p.requires_grad_(False)
        sources.append(Source(id=f"{layer}-{name}", hook_name=f"blocks.{layer}.{tl_in}",
                              W_dec=tc.W_dec.data, encode=tc.encode, kind="transcoder", sae=None,
                              hook_name_out=f"blocks.{layer}.{tl_out}"))
    return LoadedTranscoderSet(name, str(config_path.resolve()), tuple(sources), ct, hin, hout)
