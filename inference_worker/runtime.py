"""Per-process cache of loaded models and sources (never touch CUDA in a parent process)."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from inference_worker.config import TranscoderSetConfig, WorkerConfig
from inference_worker.saes import (
    Source,
    SourceRegistry,
    UnknownSourceError,
    load_sae_from_disk,
    load_sae_pretrained,
    source_from_sae,
)

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

    from inference_worker.transcoders import LoadedTranscoderSet

logger = logging.getLogger(__name__)

T = TypeVar("T")


def pick_device(requested: str = "auto") -> str:
    """'cuda' when available (for 'auto'), else 'cpu'; explicit choices are checked."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    return requested


class LRUCache:
    """A tiny thread-safe LRU; ``on_evict`` frees GPU memory."""

    def __init__(self, max_items: int, on_evict: Callable[[Any], None] | None = None) -> None:
        self.max_items = max_items
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._on_evict = on_evict

    def get_or_load(self, key: Any, load: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[no-any-return]
            value = load()
            self._items[key] = value
            while len(self._items) > self.max_items:
                _, old = self._items.popitem(last=False)
                if self._on_evict is not None:
                    self._on_evict(old)
            return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def _free_cuda(_obj: Any) -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


_MODELS = LRUCache(max_items=1, on_evict=_free_cuda)
_SAES = LRUCache(max_items=300, on_evict=_free_cuda)
_TRANSCODERS = LRUCache(max_items=2, on_evict=_free_cuda)  # (name, resolved path, device, dtype)
_REPLACEMENTS = LRUCache(max_items=1, on_evict=_free_cuda)  # circuit-tracer replacement models


@dataclass(frozen=True, eq=False)
class LoadedWorker:
    """What one worker serves: the model and its sources, plus the transcoder sets that are on disk
    (attached lazily: see ``transcoder_set``)."""

    config: WorkerConfig
    model: HookedTransformer
    registry: SourceRegistry
    device: str
    transcoders: dict[str, LoadedTranscoderSet] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def transcoder_config(self, name: str) -> TranscoderSetConfig:
        for t in self.config.transcoder_sets:
            if t.name == name:
                return t
        configured = [t.name for t in self.config.transcoder_sets]
        raise UnknownSourceError(f"this worker has no transcoder set {name!r} (configured: "
                                 f"{', '.join(configured) or 'none'})")

    def transcoder_set(self, name: str) -> LoadedTranscoderSet:
        """The set as it is on disk now: loaded on first use, re-checked on every use (a `current`
        link that moved to a new version is reloaded). Raises TranscodersNotReady while absent."""
        tcfg = self.transcoder_config(name)
        tset = get_transcoder_set(tcfg, self.device, self.config.sae_dtype)
        with self._lock:
            if self.transcoders.get(name) is not tset:
                _check_transcoder_hooks(self.model, tset, self.config.model_id)
                self.registry.replace_set(name, tset.sources)
                self.transcoders[name] = tset
                logger.info("serving transcoder set %s (%d layers) from %s", name, tset.n_layers, tset.path)
        return tset

    def refresh_transcoders(self) -> list[str]:
        """Attach every configured set that is on disk; the names of those served. Errors other than
        'not there yet' are logged (a broken set must not stop the worker)."""
        from inference_worker.transcoders import TranscodersNotReady  # noqa: PLC0415

        ready = []
        for t in self.config.transcoder_sets:
            try:
                self.transcoder_set(t.name)
                ready.append(t.name)
            except TranscodersNotReady:
                pass
            except Exception as exc:  # a bad set: say so, keep serving the rest
                logger.warning("transcoder set %s could not be loaded: %s", t.name, exc)
        return ready

    def replacement_model(self, name: str) -> Any:
        """circuit-tracer's replacement model for the set, built once per process per set version."""
        from inference_worker.attribution import build_replacement_model  # noqa: PLC0415

        tset = self.transcoder_set(name)
        key = (self.config.model_id, name, tset.path, self.device)
        return _REPLACEMENTS.get_or_load(key, lambda: build_replacement_model(self.model, tset))


def _check_transcoder_hooks(model: Any, tset: LoadedTranscoderSet, model_id: str) -> None:
    if tset.n_layers != model.cfg.n_layers:
        raise ValueError(f"transcoder set {tset.name} has {tset.n_layers} layers, model {model_id} "
                         f"{model.cfg.n_layers}")
    for src in tset.sources:
        for hook in (src.hook_name, src.hook_name_out):
            if hook and hook not in model.hook_dict:
                raise ValueError(f"transcoder {src.id} hooks {hook}, which model {model_id} lacks")


def transcoder_path(tcfg: TranscoderSetConfig) -> Path:
    """Where the set is now: the configured path with its links (`current`) followed. Raises
    TranscodersNotReady when nothing is there, or a trainer's folder is not complete yet."""
    from inference_worker.transcoders import TranscodersNotReady  # noqa: PLC0415

    configured = Path(tcfg.path).expanduser()
    if not configured.exists():
        raise TranscodersNotReady(f"transcoders {tcfg.name} are not trained yet (nothing at {configured})")
    resolved = configured.resolve()
    if resolved.is_dir() and (resolved / "checkpoint.pt").exists() and not (resolved / ".complete").exists():
        raise TranscodersNotReady(f"transcoders {tcfg.name} are not trained yet (training in {resolved})")
    return resolved


def get_transcoder_set(tcfg: TranscoderSetConfig, device: str, dtype: str) -> LoadedTranscoderSet:
    from inference_worker.transcoders import load_transcoder_set  # noqa: PLC0415

    path = transcoder_path(tcfg)
    key = (tcfg.name, str(path), device, dtype)
    return _TRANSCODERS.get_or_load(key, lambda: load_transcoder_set(path, tcfg.name, device, dtype))


def get_model(config: WorkerConfig, device: str | None = None) -> HookedTransformer:
    from inference_worker.models import load_model

    device = device or pick_device(config.device)
    key = (config.model_id, config.dtype, device)
    return _MODELS.get_or_load(key, lambda: load_model(config, device))


def get_source(source_cfg: Any, device: str, dtype: str) -> Source:
    key = (source_cfg.id, source_cfg.path, source_cfg.release, source_cfg.sae_id, device, dtype)

    def load() -> Source:
        if source_cfg.path is not None:
            sae = load_sae_from_disk(source_cfg.path, device, dtype)
        else:
            sae = load_sae_pretrained(source_cfg.release, source_cfg.sae_id, device, dtype)
        return source_from_sae(source_cfg.id, sae)

    return _SAES.get_or_load(key, load)


def get_worker(config: WorkerConfig) -> LoadedWorker:
    """Load (or reuse) the model and every configured source for ``config``."""
    device = pick_device(config.device)
    model = get_model(config, device)
    registry = SourceRegistry(
        get_source(src, device, config.sae_dtype)
        for s in config.source_sets for src in s.sources
    )
    for src in registry.ids:
        hook = registry.get(src).hook_name
        if hook not in model.hook_dict:
            raise ValueError(f"source {src} hooks {hook}, which model {config.model_id} lacks")
    worker = LoadedWorker(config, model, registry, device)
    worker.refresh_transcoders()  # sets already on disk are served from the start
    return worker


def clear_caches() -> None:
    _MODELS.clear()
    _SAES.clear()
    _TRANSCODERS.clear()
    _REPLACEMENTS.clear()
    _free_cuda(None)
