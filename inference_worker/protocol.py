"""The contract between the web side and the inference worker, in one place both import.

Pure Python (no Django, no Celery, no torch): task names, Redis key prefixes, the one parser of
Neuronpedia's source ids, and the typed shapes of the worker's replies (JSON, in Neuronpedia's
inference-server camelCase). A name, prefix or reply field changed here changes on both sides at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, Literal, TypedDict, TypeVar

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


# --- Replies ----------------------------------------------------------------------------------------
# An interactive operation's task returns `OkReply[<its result>]` or `ErrorReply` (what `ok_reply` and
# `error_reply` build); `steer` also streams partial `SteerReply`s (STREAM_PREFIX).

SteerType = Literal["STEERED", "DEFAULT"]


class TokenizeReply(TypedDict):
    tokens: list[int]
    tokenStrings: list[str]
    tokensIsSpecial: list[bool]
    prependBos: bool


class ActivationValues(TypedDict):
    values: list[float]
    maxValue: float
    maxValueIndex: int


class ActivationReply(TypedDict):
    """`activation_single`: one feature (or vector) over the prompt's tokens."""

    tokens: list[str]
    tokensIsSpecial: list[bool]
    activation: ActivationValues


class FeatureActivationReply(TypedDict):
    source: str
    index: int
    values: list[float]
    maxValue: float
    maxValueIndex: int
    sumValues: float


class SearchAllReply(TypedDict):
    tokens: list[str]
    activations: list[FeatureActivationReply]


class TopFeature(TypedDict):
    featureIndex: int
    activationValue: float


class TokenTopFeaturesReply(TypedDict):
    token: str
    tokenPosition: int
    isSpecial: bool
    topFeatures: list[TopFeature]


class TopkByTokenReply(TypedDict):
    tokens: list[str]
    results: list[TokenTopFeaturesReply]


class ActiveFeaturesReply(TypedDict):
    tokens: list[str]
    activeFeatures: dict[str, list[list[float]]]  # feature index -> [[position, value], ...]


class DecoderVectorReply(TypedDict):
    vector: list[float]
    hookName: str


class FeatureRef(TypedDict):
    model: str
    source: str
    index: int


class CossimEntry(TypedDict):
    feature: FeatureRef
    cosineSimilarity: float


class CossimReply(TypedDict):
    topkDecoderCossimFeatures: list[CossimEntry]


class ChatMessageDict(TypedDict):
    role: str
    content: str


class TopLogprob(TypedDict):
    token: str
    logprob: float


class TokenLogprobReply(TypedDict):
    token: str
    logprob: float
    topLogprobs: list[TopLogprob]


# Optional fields sit in a `total=False` base (not `NotRequired[...]`): with postponed annotations,
# only `total` is visible to runtime introspection (`__required_keys__`).
class _SteerOutputOptional(TypedDict, total=False):
    output: str
    raw: str
    chatTemplate: list[ChatMessageDict]
    logprobs: list[TokenLogprobReply]


class SteerOutputReply(_SteerOutputOptional):
    """One continuation: `output` for a completion; `raw` and `chatTemplate` for a chat."""

    type: SteerType


class SteerInput(TypedDict):
    chatTemplate: list[ChatMessageDict]
    raw: str


class _SteerReplyOptional(TypedDict, total=False):
    input: SteerInput


class SteerReply(_SteerReplyOptional):
    """`/steer/completion` (outputs) or `/steer/completion-chat` (input and outputs)."""

    outputs: list[SteerOutputReply]


class TokenProb(TypedDict):
    token: str
    token_id: int
    prob: float
    logit: float


class InterventionReply(TypedDict):
    """`graph_intervene`: the next-token distribution before and after, and greedy continuations."""

    before: list[TokenProb]
    after: list[TokenProb]
    default_text: str
    steered_text: str
    n_tokens: int


OperationResult = TypeVar(
    "OperationResult", TokenizeReply, ActivationReply, SearchAllReply, TopkByTokenReply,
    ActiveFeaturesReply, DecoderVectorReply, CossimReply, SteerReply, InterventionReply)


class OkReply(TypedDict, Generic[OperationResult]):
    ok: Literal[True]
    result: OperationResult


class ErrorReply(TypedDict):
    ok: Literal[False]
    error: str  # safe to show
    status: int  # the HTTP status the web side answers with


def ok_reply(result: OperationResult) -> OkReply[OperationResult]:
    return {"ok": True, "result": result}


def error_reply(error: str, status: int) -> ErrorReply:
    return {"ok": False, "error": error, "status": status}
