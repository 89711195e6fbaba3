"""Validation and conversion of export rows (dicts) into COPY tuples, with messages naming the key.

Types follow the target column: `float4[]` values must be JSON numbers, `text[]` values strings, and so
on. A wrong type, a missing required key or a feature index outside the source raises RowError; the
loader adds the file name and line number.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from features.embedders_registry import EMBEDDERS, OPENAI_3_LARGE_256
from transfer.importer.layout import Column

EMBEDDER_BY_WIDTH = {spec.dimensions: spec.name for spec in EMBEDDERS.values()}
EMBEDDER_BY_WIDTH[OPENAI_3_LARGE_256.dimensions] = OPENAI_3_LARGE_256.name


EMPTY_FLOATS = np.zeros(0, dtype=np.float32)


class RowError(ValueError):
    pass


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _wrong(key: str, expected: str, value: Any) -> RowError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return RowError(f"key '{key}' must be {expected}, got {_type_name(value)} {shown}")


def to_float(key: str, value: Any) -> float:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return float(value)
    raise _wrong(key, "a number", value)


def to_int(key: str, value: Any) -> int:
    kind = type(value)
    if kind is int:
        return value
    if kind is str and value.lstrip("-").isdigit():
        return int(value)  # Neuronpedia stores index and dataIndex as text
    if kind is float and value.is_integer():
        return int(value)
    raise _wrong(key, "an integer", value)


def to_str(key: str, value: Any) -> str:
    """PostgreSQL text holds no NUL: like Neuronpedia's importJsonlString (which replaces every `\\u0000` in
    a batch file with a space), a NUL becomes a space; its converter writes them in tokens."""
    if type(value) is not str:
        raise _wrong(key, "a string", value)
    return value.replace("\x00", " ") if "\x00" in value else value


def to_bool(key: str, value: Any) -> bool:
    if type(value) is not bool:
        raise _wrong(key, "true or false", value)
    return value


def to_floats(key: str, value: Any) -> Any:
    """A list of JSON numbers, returned as a float32 numpy array (what the binary COPY encodes)."""
    if type(value) is not list:
        raise _wrong(key, "a list of numbers", value)
    array = np.asarray(value) if value else EMPTY_FLOATS
    if array.dtype.kind not in "fi" or array.ndim != 1:
        bad = next((v for v in value if type(v) not in (float, int)), value)
        raise _wrong(key, "a list of numbers", bad)
    return array


def to_ints(key: str, value: Any) -> list[int]:
    if type(value) is not list or any(type(v) is not int for v in value):
        raise _wrong(key, "a list of integers", value)
    return value


def to_strs(key: str, value: Any) -> list[str]:
    if type(value) is not list:
        raise _wrong(key, "a list of strings", value)
    try:
        joined = "".join(value)  # one C loop: TypeError unless every item is a string
    except TypeError:
        raise _wrong(key, "a list of strings", next(v for v in value if not isinstance(v, str))) from None
    return [v.replace("\x00", " ") for v in value] if "\x00" in joined else value


def parse_vector_text(key: str, value: str) -> list[Any]:
    """pgvector's text form "[0.07,-0.04,...]": what Neuronpedia's exporter writes, since psycopg2 has no
    pgvector adapter and hands the column over as a string."""
    text = value.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise _wrong(key, "a list of numbers or a vector string '[...]'", value)
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _wrong(key, "a list of numbers or a vector string '[...]'", value) from None
    return parsed


def to_vector(key: str, value: Any) -> bytes:
    """pgvector's binary format (dims, unused, float4 big-endian), sent as-is by a binary COPY. A JSON list
    or pgvector's text form (a string)."""
    if type(value) is str:
        value = parse_vector_text(key, value)
    floats = to_floats(key, value)
    if not len(floats):
        raise RowError(f"key '{key}' must not be an empty list")
    return struct.pack(">HH", len(floats), 0) + floats.astype(">f4").tobytes()


CONVERTERS: dict[str, Callable[[str, Any], Any]] = {
    "int": to_int, "float": to_float, "bool": to_bool, "str": to_str, "floats": to_floats,
    "ints": to_ints, "strs": to_strs, "vector": to_vector,
}
EMPTY: dict[str, Any] = {"str": "", "floats": EMPTY_FLOATS, "ints": [], "strs": [], "bool": False,
                         "float": 0.0}


def split_z_indices(record: dict[str, Any]) -> None:
    """Exports store attention indices as `zIndices` = [zKIndices, zQIndices] (as Neuronpedia's import
    reads them); the table has the two columns."""
    combined = record.get("zIndices")
    if isinstance(combined, list) and len(combined) == 2:
        record.setdefault("zKIndices", combined[0])
        record.setdefault("zQIndices", combined[1])


def convert(record: dict[str, Any], columns: tuple[Column, ...]) -> list[Any]:
    """Values for `columns`, in order. Unknown keys are ignored; an absent key takes Neuronpedia's column
    default where it has one (`Column.absent`), a null stays null."""
    out: list[Any] = []
    for col in columns:
        value = record.get(col.key)
        if value is None and col.absent is not None and col.key not in record:
            value = col.absent  # a key the file leaves out: Neuronpedia's import stores the column default
        if value is None:
            if col.required:
                raise RowError(f"missing required key '{col.key}'" if col.key not in record
                               else f"key '{col.key}' must not be null")
            if col.nullable:
                out.append(None)
                continue
            out.append(EMPTY[col.kind])
            continue
        out.append(CONVERTERS[col.kind](col.key, value))
    return out


def feature_index(record: dict[str, Any], num_features: int | None, source_name: str) -> int:
    if "index" not in record:
        raise RowError("missing required key 'index'")
    index = to_int("index", record["index"])
    if index < 0 or (num_features is not None and index >= num_features):
        raise RowError(f"feature index {index} is outside source {source_name} "
                       f"(num_features={num_features})")
    return index
