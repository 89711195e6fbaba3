"""Streaming JSONL reader: one parsed object at a time, with its line number; never a whole file."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from transfer.importer.errors import ImportFileError


def _loads(raw: bytes) -> Any:
    """orjson (about twice as fast); anything it refuses goes through the standard library, which decides
    (NaN and Infinity, integers beyond 64 bits, lone surrogates) and words the error."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def iter_records(handle: BinaryIO, path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) from a `.jsonl` or `.jsonl.gz` stream; blank lines are skipped."""
    stream: BinaryIO = gzip.GzipFile(fileobj=handle, mode="rb") if path.endswith(".gz") else handle  # type: ignore[assignment]
    line_no = 0
    try:
        for line_no, raw in enumerate(stream, 1):  # noqa: B007 - line_no is read after the loop
            if not raw.strip():
                continue
            try:
                record = _loads(raw)
            except ValueError as exc:
                detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else exc
                raise ImportFileError(path, f"invalid JSON: {detail}", line_no) from None
            if not isinstance(record, dict):
                raise ImportFileError(path, f"expected a JSON object, got {type(record).__name__}", line_no)
            yield line_no, record
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ImportFileError(path, f"truncated or corrupt gzip data after line {line_no} ({exc})") from None


def read_single(handle: BinaryIO, path: str) -> dict[str, Any]:
    """The first object of a one-row metadata file (model.jsonl, source.jsonl, ...)."""
    for _, record in iter_records(handle, path):
        return record
    raise ImportFileError(path, "the file is empty")
