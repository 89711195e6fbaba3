"""Sources: SAE-Lens SAEs or raw vectors at a hook, addressed by Neuronpedia source id."""

# ruff: noqa: F722  (jaxtyping shape strings)
from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from jaxtyping import Float
from torch import Tensor

from inference_worker.source_ids import SourceId, is_valid_source_id, parse_source_id

if TYPE_CHECKING:
    from sae_lens import SAE

__all__ = [
    "FwdHooks", "Source", "SourceRegistry", "SourceId", "UnknownSourceError", "hook_layer",
    "is_valid_source_id", "load_sae_from_disk", "load_sae_pretrained", "parse_source_id",
    "sae_hook_name", "source_from_sae", "source_from_vectors",
]

# TransformerLens forward hooks as `run_with_hooks` and `hooks` take them: (hook name or name filter, hook).
FwdHooks: TypeAlias = list[tuple[str | Callable[..., Any], Callable[..., Any]]]

_BLOCK = re.compile(r"^blocks\.(\d+)\.")


class UnknownSourceError(LookupError):
    """The source id is not served by this worker."""


def hook_layer(hook_name: str) -> int | None:
    """Block index a hook lives in (``blocks.7.hook_resid_post`` → 7); None for embed/final."""
    m = _BLOCK.match(hook_name)
    if m:
        return int(m.group(1))
    return -1 if hook_name in ("hook_embed", "hook_pos_embed", "hook_tokens") else None


def load_sae_from_disk(path: str | Path, device: str = "cpu", dtype: str = "float32") -> SAE:
    """Load an SAE-Lens folder (``cfg.json`` + ``sae_weights.safetensors``)."""
    from sae_lens import SAE

    path = Path(path).expanduser()
    if not (path / "cfg.json").exists():
        raise FileNotFoundError(f"no SAE-Lens cfg.json in {path}")
    sae = SAE.load_from_disk(path, device=device, dtype=dtype)
    sae.eval()
    return sae


def load_sae_pretrained(release: str, sae_id: str, device: str = "cpu",
                        dtype: str = "float32") -> SAE:
    """Load by SAE-Lens release/id; downloads from the HF hub."""
    from sae_lens import SAE

    try:
        sae = SAE.from_pretrained(release, sae_id, device=device, dtype=dtype)
    except Exception as exc:  # network / hub errors come in many types
        raise RuntimeError(
            f"could not load SAE {release}/{sae_id} from the HuggingFace hub "
            f"(offline? use a local folder instead): {exc}"
        ) from exc
    sae.eval()
    return sae


def sae_hook_name(sae: SAE) -> str:
    name = sae.cfg.metadata.hook_name
    if not name:
        raise ValueError("SAE config has no metadata.hook_name")
    return str(name)


@dataclass(frozen=True, eq=False)
class Source:
    """A dictionary of directions at one hook: SAE features or raw vectors.

    ``encode`` maps hook activations ``[..., d_in]`` to feature activations ``[..., d_sae]``;
    ``W_dec`` holds one direction per feature (SAE decoder rows, or the raw vectors).
    """

    id: str
    hook_name: str
    W_dec: Float[Tensor, "d_sae d_in"]
    encode: Callable[[Tensor], Tensor]
    kind: str = "sae"  # "sae" | "vectors" | "transcoder"
    sae: Any = None
    hook_name_out: str | None = None  # transcoders: the hook their decoder reconstructs

    @property
    def d_sae(self) -> int:
        return int(self.W_dec.shape[0])

    @property
    def d_in(self) -> int:
        return int(self.W_dec.shape[1])

    @property
    def layer(self) -> int | None:
        return hook_layer(self.hook_name)

    @property
    def set_name(self) -> str:
        return parse_source_id(self.id).set_name

    def encode_hook_acts(self, acts: Tensor) -> Float[Tensor, "batch pos d_sae"]:
        """Encode raw hook output; flattens ``hook_z`` heads ``[b, p, h, d]`` → ``[b, p, h*d]``."""
        if acts.ndim == 4:
            acts = acts.flatten(-2)
        return self.encode(acts.to(self.W_dec.dtype))


def source_from_sae(source_id: str, sae: SAE, hook_name: str | None = None) -> Source:
    """An SAE-Lens SAE or transcoder (``cfg.d_out``: reads ``hook_name``, writes ``hook_name_out``)."""
    parse_source_id(source_id)
    if hasattr(sae.cfg, "d_out"):
        layer = hook_layer(hook_name or sae_hook_name(sae))
        out = getattr(sae.cfg.metadata, "hook_name_out", None) or f"blocks.{layer}.hook_mlp_out"
        return Source(id=source_id, hook_name=hook_name or sae_hook_name(sae), W_dec=sae.W_dec.data,
                      encode=sae.encode, kind="transcoder", sae=sae, hook_name_out=str(out))
    return Source(id=source_id, hook_name=hook_name or sae_hook_name(sae), W_dec=sae.W_dec.data,
                  encode=sae.encode, kind="sae", sae=sae)


def source_from_vectors(source_id: str, hook_name: str,
                        vectors: Float[Tensor, "n d_in"]) -> Source:
    """Raw vectors as a source: activation = dot product with the hook activation."""
    parse_source_id(source_id)
    vectors = vectors.detach()
    if vectors.ndim == 1:
        vectors = vectors[None]

    def encode(x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... n"]:
        return x @ vectors.T

    return Source(id=source_id, hook_name=hook_name, W_dec=vectors, encode=encode,
                  kind="vectors")


class SourceRegistry:
    """The sources one worker serves, by Neuronpedia id; insertion order is kept.

    Writes replace the dict instead of mutating it (copy on write), so the heartbeat thread can read
    ``ids`` while a transcoder set that finished training is being attached."""

    def __init__(self, sources: Iterable[Source] = ()) -> None:
        self._sources: dict[str, Source] = {}
        self._lock = threading.Lock()
        for s in sources:
            self.add(s)

    def add(self, source: Source) -> None:
        with self._lock:
            if source.id in self._sources:
                raise ValueError(f"duplicate source id {source.id}")
            self._sources = {**self._sources, source.id: source}

    def replace_set(self, set_name: str, sources: Sequence[Source]) -> None:
        """Serve exactly ``sources`` for ``set_name`` (e.g. a transcoder set's new version)."""
        if any(s.set_name != set_name for s in sources):
            raise ValueError(f"sources {[s.id for s in sources]} are not all in set {set_name!r}")
        with self._lock:
            kept = {k: v for k, v in self._sources.items() if v.set_name != set_name}
            self._sources = {**kept, **{s.id: s for s in sources}}

    def get(self, source_id: str) -> Source:
        try:
            return self._sources[source_id]
        except KeyError:
            raise UnknownSourceError(
                f"source {source_id!r} is not loaded; available: {sorted(self._sources)}"
            ) from None

    def remove(self, source_id: str) -> None:
        with self._lock:
            self._sources = {k: v for k, v in self._sources.items() if k != source_id}

    def __contains__(self, source_id: object) -> bool:
        return source_id in self._sources

    def __len__(self) -> int:
        return len(self._sources)

    @property
    def ids(self) -> list[str]:
        return list(self._sources)

    @property
    def set_names(self) -> list[str]:
        return sorted({s.set_name for s in self._sources.values()})

    def in_set(self, set_name: str, selected: Sequence[str] = ()) -> list[Source]:
        """Sources of ``set_name``; ``selected`` ([] = all) narrows them, unknown ids raise."""
        members = [s for s in self._sources.values() if s.set_name == set_name]
        if not members:
            raise UnknownSourceError(f"source set {set_name!r} is not loaded")
        if not selected:
            return members
        by_id = {s.id: s for s in members}
        missing = [sid for sid in selected if sid not in by_id]
        if missing:
            raise UnknownSourceError(f"sources {missing} are not in set {set_name!r}")
        return [by_id[sid] for sid in dict.fromkeys(selected)]

    def decoder_vector(self, source_id: str, index: int) -> Float[Tensor, " d_in"]:
        src = self.get(source_id)
        if not 0 <= index < src.d_sae:
            raise IndexError(f"feature {index} out of range for {source_id} (d_sae={src.d_sae})")
        return src.W_dec[index]


