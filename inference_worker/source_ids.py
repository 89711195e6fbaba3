"""Neuronpedia source ids: kept as an import path; the one parser lives in `inference_worker.protocol`."""

from __future__ import annotations

from inference_worker.protocol import SourceId, is_valid_source_id, parse_source_id

__all__ = ["SourceId", "is_valid_source_id", "parse_source_id"]
