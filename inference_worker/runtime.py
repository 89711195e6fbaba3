"""Per-process cache of loaded models and sources (never touch CUDA in a parent process)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from inference_worker.config import WorkerConfig
from inference_worker.saes import (
    Source,
    SourceRegistry,
    load_sae_from_disk,
    load_sae_pretrained,
    source_from_sae,
)

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

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


@dataclass(frozen=True, eq=False)
class LoadedWorker:
    """What one worker serves: the model and its sources."""

    config: WorkerConfig
    model: HookedTransformer
    registry: SourceRegistry
    device: str


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
    return LoadedWorker(config, model, registry, device)


def clear_caches() -> None:
    _MODELS.clear()
    _SAES.clear()
    _free_cuda(None)
