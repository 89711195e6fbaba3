"""Neuronpedia source ids: ``{layer}-{set}`` with an optional ``__{suffix}``. Pure Python."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SOURCE_ID = re.compile(
    r"^(?P<layer>\d+)-(?P<set>[A-Za-z0-9][A-Za-z0-9_.\-]*?)(?:__(?P<suffix>[A-Za-z0-9_.\-]+))?$"
)


@dataclass(frozen=True)
class SourceId:
    layer: int
    set_name: str
    suffix: str | None = None

    def __str__(self) -> str:
        base = f"{self.layer}-{self.set_name}"
        return f"{base}__{self.suffix}" if self.suffix else base


def parse_source_id(source_id: str) -> SourceId:
    """``"6-res-jb"`` → SourceId(6, "res-jb"); ``"6-res-jb__v2"`` keeps suffix "v2"."""
    m = _SOURCE_ID.match(source_id)
    if m is None:
        raise ValueError(f"invalid source id {source_id!r}: expected '{{layer}}-{{set}}'")
    return SourceId(int(m["layer"]), m["set"], m["suffix"])


def is_valid_source_id(source_id: str) -> bool:
    try:
        parse_source_id(source_id)
    except ValueError:
        return False
    return True
