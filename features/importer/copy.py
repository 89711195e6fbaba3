"""Binary COPY into our tables with psycopg 3 (`cursor.copy`), typed from the Django model fields.

Rows are encoded here in PostgreSQL's binary COPY format (numeric arrays through numpy) and written in
~1 MB blocks: psycopg's per-row list dumpers are pure Python and were the import's bottleneck.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.db import connection
from django.db import models as djm

PG_TYPES = {
    "real": "float4", "double precision": "float8", "integer": "int4", "bigint": "int8",
    "smallint": "int2", "boolean": "bool", "text": "text", "jsonb": "jsonb",
    "timestamp with time zone": "timestamptz",
    "vector": "vector",  # values arrive pre-encoded (pgvector's binary format)
}
SIGNATURE = b"PGCOPY\n\xff\r\n\0" + b"\0\0\0\0" + b"\0\0\0\0"
TRAILER = b"\xff\xff"
NULL = b"\xff\xff\xff\xff"
BLOCK = 1 << 20
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_i, _h = struct.Struct(">i"), struct.Struct(">h")
ELEMENT = {"float4": (700, np.dtype([("n", ">i4"), ("v", ">f4")])),
           "int4": (23, np.dtype([("n", ">i4"), ("v", ">i4")]))}


def copy_type(field: djm.Field) -> str:
    db_type = field.db_type(connection) or ""
    base = re.sub(r"\(.*\)", "", db_type.removesuffix("[]")).strip()
    base = "text" if base == "varchar" else base
    name = PG_TYPES[base]
    return name + "[]" if db_type.endswith("[]") else name


def _numeric_array(element: str) -> Callable[[Any], bytes]:
    oid, dtype = ELEMENT[element]

    def encode(values: Any) -> bytes:
        n = len(values)
        if not n:
            return struct.pack(">iii", 0, 0, oid)
        packed = np.empty(n, dtype=dtype)
        packed["n"] = 4
        packed["v"] = values
        return struct.pack(">iiiii", 1, 0, oid, n, 1) + packed.tobytes()

    return encode


def _text_array(values: Sequence[str]) -> bytes:
    if not values:
        return struct.pack(">iii", 0, 0, 25)
    encoded = [s.encode() for s in values]
    return struct.pack(">iiiii", 1, 0, 25, len(encoded), 1) + b"".join(
        [_i.pack(len(b)) + b for b in encoded])


def _timestamptz(value: datetime) -> bytes:
    delta = value - EPOCH
    return struct.pack(">q", (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)


ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "int8": struct.Struct(">q").pack, "int4": _i.pack, "int2": _h.pack,
    "float4": struct.Struct(">f").pack, "float8": struct.Struct(">d").pack,
    "bool": lambda v: b"\x01" if v else b"\x00", "text": str.encode,
    "jsonb": lambda v: b"\x01" + json.dumps(v).encode(), "timestamptz": _timestamptz,
    "vector": bytes, "float4[]": _numeric_array("float4"), "int4[]": _numeric_array("int4"),
    "text[]": _text_array,
}


def copy_rows(table: str, model: type[djm.Model], columns: Sequence[str],
              rows: Iterable[Sequence[Any]]) -> int:
    """COPY `rows` into `table` (binary); returns how many were written. Runs in the caller's transaction."""
    fields = {f.column: f for f in model._meta.concrete_fields}
    encoders = [ENCODERS[copy_type(fields[c])] for c in columns]
    head = _h.pack(len(columns))
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        parts: list[bytes] = [SIGNATURE]
        size = 0
        for row in rows:
            parts.append(head)
            for encode, value in zip(encoders, row, strict=True):
                if value is None:
                    parts.append(NULL)
                else:
                    data = encode(value)
                    parts.append(_i.pack(len(data)))
                    parts.append(data)
                    size += len(data)
            count += 1
            if size > BLOCK:
                copy.write(b"".join(parts))
                parts, size = [], 0
        parts.append(TRAILER)
        copy.write(b"".join(parts))
    return count
