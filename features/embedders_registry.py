"""Names and widths of the sentence embedders whose vectors are indexed (one partial HNSW index each).

Kept free of heavy imports: migrations and selectors read it. The embedders themselves are loaded by
autointerp (local all-MiniLM-L6-v2 offline by default; OpenAI text-embedding-3-large at 256 dims, the
width of the embeddings in Neuronpedia's exports).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmbedderSpec:
    name: str
    dimensions: int
    index_name: str


MINILM = EmbedderSpec("all-MiniLM-L6-v2", 384, "explanation_emb_minilm_hnsw")
OPENAI_3_LARGE_256 = EmbedderSpec("text-embedding-3-large-256", 256, "explanation_emb_oai256_hnsw")
EMBEDDERS: dict[str, EmbedderSpec] = {spec.name: spec for spec in (MINILM, OPENAI_3_LARGE_256)}
DEFAULT_EMBEDDER = MINILM.name


def embedder_spec(name: str) -> EmbedderSpec:
    try:
        return EMBEDDERS[name]
    except KeyError:
        raise ValueError(f"unknown embedder {name!r}; known: {', '.join(EMBEDDERS)}") from None
