"""The contract between the web side and the inference worker, in one place both import.

Pure Python (no Django, no Celery, no torch): task names, Redis key prefixes, and the one parser of
Neuronpedia's source ids. A name or prefix changed here changes on both sides at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --- Celery task names (queue: inference.<model_id>) ------------------------------------------------
TASK_PREFIX = "inference_worker.tasks."
GENERATE_DASHBOARDS_TASK = TASK_PREFIX + "generate_dashboards"
GENERATE_GRAPH_TASK = TASK_PREFIX + "generate_graph"
TRAIN_TRANSCODERS_TASK = TASK_PREFIX + "train_transcoders"


def operation_task(operation: str) -> str:
    """The task name of an interactive operation (`steer`, `activation_single`, ...)."""
    return TASK_PREFIX + operation


# --- Redis keys -------------------------------------------------------------------------------------
STREAM_PREFIX = "np:stream:"  # + stream key: partial steering results (XADD)
ALIVE_PREFIX = "np:alive:"  # + worker name: liveness, short TTL
WORKERS_PREFIX = "np:workers:"  # + model id: the set of worker names
INFLIGHT_PREFIX = "np:inflight:"  # + model id: calls admitted and not answered (bounded queue)
REPLY_PREFIX = "np:reply:"  # + call id: the worker pushes its reply here
CLAIM_PREFIX = "np:claim:"  # + call id: a worker started this call
CANCEL_PREFIX = "np:cancel:"  # + call id: the caller gave up
STATS_PREFIX = "np:stats:"  # + model id: counters (ran, dropped_stale, ...)


# --- Source ids -------------------------------------------------------------------------------------
SOURCE_ID_RE = re.compile(r"^(?P<layer>\d+)-(?P<set>[a-z0-9][a-z0-9._-]*?)(?:__(?P<suffix>[a-z0-9._-]+))?$")


@dataclass(frozen=True)
class SourceId:
    """Neuronpedia's `{layer}-{set}` with an optional `__{suffix}` (lowercase, as the catalog stores them)."""

    layer: int
    set_name: str
    suffix: str = ""

    def __str__(self) -> str:
        return f"{self.layer}-{self.set_name}" + (f"__{self.suffix}" if self.suffix else "")


def parse_source_id(source_id: object) -> SourceId:
    """`6-res-jb` -> SourceId(6, 'res-jb'); `6-res-jb__v2` keeps suffix 'v2'; ValueError with a readable
    message otherwise (upper case included: the catalog and the worker must name sources the same way)."""
    match = SOURCE_ID_RE.match(source_id) if isinstance(source_id, str) else None
    if not match:
        raise ValueError(
            f"invalid source id {source_id!r}: expected '{{layer}}-{{set}}' such as '6-res-jb'")
    return SourceId(int(match["layer"]), match["set"], match["suffix"] or "")


def is_valid_source_id(source_id: object) -> bool:
    try:
        parse_source_id(source_id)
    except ValueError:
        return False
    return True
