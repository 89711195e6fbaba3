"""Steering: DEFAULT and STEERED generations through the model's inference worker, cached in SteerOutput.

A request is first *planned* (`plan_steer`): inputs are checked, both halves get their cache key
(`steer_cache_key`, see docs/architecture.md "Steering cache") and cached halves are looked up. Only the
missing halves are then generated, either waiting for the whole result (`run_steer`, or `arun_steer`
for async views) or streamed token by token (`astart_stream` admits and publishes the calls before the
response starts, `astream_steer` relays the worker's Redis stream on redis.asyncio). Every generated
half is stored with get-or-create on its unique cache key, so two racing requests end up sharing one
row; a STEERED row records its features and strengths (SteerOutputFeature) and points at the DEFAULT
row it was compared with (`connected_default_output`). The STEERED row's id is the share id (`/steer/{id}`).

The seed is part of the key and the worker re-seeds each half, so a cached half is exactly what a new
generation would produce: the cache is valid, not an approximation.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction

from features.models import Feature, Model, Source
from inference import client as inference
from steering.models import SteerMethod, SteerOutput, SteerOutputFeature, SteerType, steer_cache_key

STEERING_VERSION = 1
N_LOGPROBS = 5
# Neuronpedia's /api/steer limits (shared/reference/neuronpedia.md §2.4)
MAX_PROMPT_CHARS = 2048
N_TOKENS_RANGE = (1, 256)
TEMPERATURE_RANGE = (0.0, 2.0)
STRENGTH_MULTIPLIER_RANGE = (0.0, 10.0)
FREQ_PENALTY_RANGE = (-2.0, 2.0)
SEED_RANGE = (-100_000_000, 100_000_000)
STRENGTH_RANGE = (-300.0, 300.0)
MAX_FEATURES = 32
MAX_CHAT_MESSAGES = 64
CHAT_ROLES = ("user", "assistant", "system", "model", "developer")
# streaming: give up when nothing arrived for STREAM_IDLE_SECONDS or after STREAM_TOTAL_SECONDS
STREAM_IDLE_SECONDS = 60.0
STREAM_TOTAL_SECONDS = 300.0
BLOCKING_TIMEOUT_SECONDS = 180.0
TYPES = (SteerType.STEERED, SteerType.DEFAULT)
STREAM_PREFIX = inference.STREAM_PREFIX  # where the worker publishes partial results (protocol)

ChatMessages = list[dict[str, str]]


class SteerInputError(ValueError):
    """The request is invalid (a limit, mixed features and vectors...): HTTP 400."""

    status = 400


def _feature_row(model: Any, source_name: str, index: int) -> Feature:
    """The Feature row of (source, index). A source served by a worker may have no rows yet (no
    dashboards): an index inside its width gets a bare row, as steering outputs reference rows."""
    found = (Feature.objects.select_related("source__model", "source__source_set")
             .filter(source__model=model, source__name=source_name, index=index).first())
    if found is not None:
        return found
    source = Source.objects.filter(model=model, name=source_name).first()
    if source is None or source.num_features is None or not 0 <= index < source.num_features:
        raise SteerNotFound(f"feature {model.id}/{source_name}/{index} not found")
    Feature.objects.get_or_create(source=source, index=index)
    return Feature.objects.select_related("source__model", "source__source_set").get(
        source=source, index=index)


class SteerNotFound(LookupError):
    """A feature or model of the request does not exist (or the caller may not see it): HTTP 404."""

    status = 404


@dataclass(frozen=True)
class SteerTarget:
    """One feature (an SAE latent or a user vector, both Feature rows) at one strength."""

    feature: Feature
    strength: float

    @property
    def key(self) -> str:
        return f"{self.feature.source.model_id}/{self.feature.source.name}/{self.feature.index}"


@dataclass(frozen=True)
class SteerParams:
    model: Model
    targets: tuple[SteerTarget, ...]
    prompt: str | None = None
    default_chat: ChatMessages | None = None
    steered_chat: ChatMessages | None = None
    temperature: float = 0.5
    n_tokens: int = 32
    freq_penalty: float = 1.0
    seed: int = 16
    strength_multiplier: float = 1.0
    steer_method: str = SteerMethod.SIMPLE_ADDITIVE
    steer_special_tokens: bool = True
    n_logprobs: int = N_LOGPROBS

    @property
    def is_chat(self) -> bool:
        return self.prompt is None

    @property
    def uses_vectors(self) -> bool:
        return any(t.feature.has_vector for t in self.targets)

    def messages(self, steer_type: str) -> ChatMessages | None:
        if not self.is_chat:
            return None
        return self.steered_chat if steer_type == SteerType.STEERED else self.default_chat

    def cache_key(self, steer_type: str) -> str:
        return steer_cache_key(
            model_id=self.model.id, type=steer_type, prompt=self.prompt,
            chat_messages=self.messages(steer_type), temperature=self.temperature,
            n_tokens=self.n_tokens, freq_penalty=self.freq_penalty, seed=self.seed,
            strength_multiplier=self.strength_multiplier, steer_method=self.steer_method,
            steer_special_tokens=self.steer_special_tokens,
            features=[(t.key, t.strength) for t in self.targets], version=STEERING_VERSION)

    @property
    def source_names(self) -> list[str]:
        """The sources the worker must serve (user vectors travel with the request)."""
        return sorted({t.feature.source.name for t in self.targets if not t.feature.has_vector})

    def payload(self, types: Sequence[str], stream_key: str | None = None) -> dict[str, Any]:
        """The worker's `steer` payload (Neuronpedia's /v1/steer/completion(-chat) fields)."""
        payload: dict[str, Any] = {
            "types": list(types), "strengthMultiplier": self.strength_multiplier,
            "steerMethod": self.steer_method, "normalizeSteering": False,
            "nCompletionTokens": self.n_tokens, "temperature": self.temperature, "seed": self.seed,
            "freqPenalty": self.freq_penalty, "nLogprobs": self.n_logprobs,
            "steerSpecialTokens": self.steer_special_tokens,
        }
        if self.is_chat:
            payload["messages"] = self.messages(types[0])
        else:
            payload["prompt"] = self.prompt
        if self.uses_vectors:
            payload["vectors"] = [{"hook": t.feature.hook_name, "strength": t.strength,
                                   "steeringVector": list(t.feature.vector or [])} for t in self.targets]
        else:
            payload["features"] = [{"source": t.feature.source.name, "index": t.feature.index,
                                    "strength": t.strength} for t in self.targets]
        if stream_key:
            payload["streamKey"] = stream_key
        return payload


@dataclass
class SteerPlan:
    params: SteerParams
    cached: dict[str, SteerOutput] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [t for t in TYPES if t not in self.cached]

    def jobs(self) -> list[list[str]]:
        """Worker calls needed: one for both halves, unless chat histories differ per half."""
        missing = self.missing
        p = self.params
        if len(missing) == 2 and p.is_chat and p.default_chat != p.steered_chat:
            return [[t] for t in missing]
        return [missing] if missing else []


@dataclass(frozen=True)
class GeneratedHalf:
    """One half as the worker returned it."""

    type: str
    text: str
    logprobs: list[dict[str, Any]] | None
    chat: ChatMessages | None = None
    input_text: str = ""


@dataclass(frozen=True)
class SteerResult:
    params: SteerParams
    default: SteerOutput
    steered: SteerOutput
    from_cache: frozenset[str]

    @property
    def share_id(self) -> str:
        return self.steered.id


@dataclass(frozen=True)
class StreamEvent:
    """`partial` (halves so far, whole text each), `final` (stored result) or `error`."""

    kind: str
    halves: dict[str, GeneratedHalf] = field(default_factory=dict)
    result: SteerResult | None = None
    error: inference.InferenceError | None = None


# --- planning --------------------------------------------------------------------------------------

def _check_range(name: str, value: float, bounds: tuple[float, float]) -> None:
    if not bounds[0] <= value <= bounds[1]:
        raise SteerInputError(f"{name} must be between {bounds[0]:g} and {bounds[1]:g} (got {value:g})")


def _check_chat(name: str, messages: ChatMessages) -> ChatMessages:
    if not messages or len(messages) > MAX_CHAT_MESSAGES:
        raise SteerInputError(f"{name} must hold 1 to {MAX_CHAT_MESSAGES} messages")
    clean = []
    for m in messages:
        if m.get("role") not in CHAT_ROLES or not isinstance(m.get("content"), str):
            raise SteerInputError(f"{name}: each message needs a role ({', '.join(CHAT_ROLES)}) and content")
        clean.append({"role": m["role"], "content": m["content"]})
    if sum(len(m["content"]) for m in clean) > MAX_PROMPT_CHARS:
        raise SteerInputError(f"{name} exceed the prompt limit of {MAX_PROMPT_CHARS} characters")
    return clean


def _resolve_targets(model: Model, features: Sequence[tuple[Any, float]]) -> tuple[SteerTarget, ...]:
    if not features:
        raise SteerInputError("features must name at least one feature or vector")
    if len(features) > MAX_FEATURES:
        raise SteerInputError(f"at most {MAX_FEATURES} features can steer at once")
    targets = []
    for ref, strength in features:
        if isinstance(ref, Feature):
            feature = ref
        else:
            source_name, index = ref
            feature = _feature_row(model, source_name, int(index))
        if feature.source.model_id != model.id:
            raise SteerInputError(f"feature {feature} belongs to model {feature.source.model_id}, "
                                  f"not {model.id}")
        _check_range("strength", float(strength), STRENGTH_RANGE)
        targets.append(SteerTarget(feature, float(strength)))
    if len({t.key for t in targets}) != len(targets):
        raise SteerInputError("a feature appears more than once in features")
    kinds = {t.feature.has_vector for t in targets}
    if len(kinds) > 1:
        raise SteerInputError("Can't steer both vector and non-vector features")
    for t in targets:
        if t.feature.has_vector and not (t.feature.vector and t.feature.hook_name):
            raise SteerInputError(f"vector {t.key} has no values or hook")
    return tuple(targets)


def plan_steer(*, model_id: str, features: Sequence[tuple[Any, float]], prompt: str | None = None,
               chat_messages: ChatMessages | None = None,
               default_chat_messages: ChatMessages | None = None,
               steered_chat_messages: ChatMessages | None = None, temperature: float = 0.5,
               n_tokens: int = 32, freq_penalty: float = 1.0, seed: int = 16,
               strength_multiplier: float = 1.0, steer_method: str = SteerMethod.SIMPLE_ADDITIVE,
               steer_special_tokens: bool = True, n_logprobs: int = N_LOGPROBS,
               check_live: bool = True) -> SteerPlan:
    """Validate a request, compute both cache keys and find the cached halves. When a half is missing
    and `check_live`, raise NoInferenceWorker (503) now rather than once a stream has started.

    `features`: (Feature row, strength) or ((source name, index), strength) pairs, all SAE features or
    all vectors. Give `prompt` (completion) or chat histories (`chat_messages` for both halves, or
    `default_chat_messages` + `steered_chat_messages`)."""
    model = Model.objects.filter(pk=model_id).first()
    if model is None:
        raise SteerNotFound(f"model {model_id} not found")
    default_chat = default_chat_messages if default_chat_messages is not None else chat_messages
    steered_chat = steered_chat_messages if steered_chat_messages is not None else chat_messages
    if (prompt is None) == (default_chat is None and steered_chat is None):
        raise SteerInputError("give either a prompt or chat messages")
    if prompt is not None:
        if not prompt:
            raise SteerInputError("prompt must not be empty")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise SteerInputError(f"prompt is longer than the limit of {MAX_PROMPT_CHARS} characters")
    else:
        if default_chat is None or steered_chat is None:
            raise SteerInputError("chat steering needs both defaultChatMessages and steeredChatMessages")
        default_chat = _check_chat("defaultChatMessages", default_chat)
        steered_chat = _check_chat("steeredChatMessages", steered_chat)
    if not N_TOKENS_RANGE[0] <= int(n_tokens) <= N_TOKENS_RANGE[1]:
        raise SteerInputError(f"n_tokens must be between {N_TOKENS_RANGE[0]} and {N_TOKENS_RANGE[1]}")
    _check_range("temperature", temperature, TEMPERATURE_RANGE)
    _check_range("strength_multiplier", strength_multiplier, STRENGTH_MULTIPLIER_RANGE)
    _check_range("freq_penalty", freq_penalty, FREQ_PENALTY_RANGE)
    _check_range("seed", seed, SEED_RANGE)
    if steer_method not in SteerMethod.values:
        raise SteerInputError(f"steer_method must be one of {', '.join(SteerMethod.values)}")
    params = SteerParams(
        model=model, targets=_resolve_targets(model, features), prompt=prompt,
        default_chat=default_chat, steered_chat=steered_chat, temperature=float(temperature),
        n_tokens=int(n_tokens), freq_penalty=float(freq_penalty), seed=int(seed),
        strength_multiplier=float(strength_multiplier), steer_method=steer_method,
        steer_special_tokens=bool(steer_special_tokens), n_logprobs=n_logprobs)
    keys = {t: params.cache_key(t) for t in TYPES}
    rows = {row.cache_key: row for row in SteerOutput.objects.filter(cache_key__in=keys.values())}
    plan = SteerPlan(params, {t: rows[k] for t, k in keys.items() if k in rows})
    if plan.missing and check_live:
        inference.require_live(model.id, params.source_names)
    return plan


# --- generating and storing ------------------------------------------------------------------------

def _halves(params: SteerParams, result: dict[str, Any]) -> dict[str, GeneratedHalf]:
    """The worker's /v1/steer/completion(-chat) result, per type."""
    halves = {}
    input_raw = (result.get("input") or {}).get("raw", "") if params.is_chat else (params.prompt or "")
    for out in result.get("outputs", []):
        if params.is_chat:
            halves[out["type"]] = GeneratedHalf(out["type"], out.get("raw", ""), out.get("logprobs"),
                                                out.get("chatTemplate"), input_raw)
        else:
            halves[out["type"]] = GeneratedHalf(out["type"], out.get("output", ""), out.get("logprobs"),
                                                None, input_raw)
    return halves


def _store_half(params: SteerParams, half: GeneratedHalf, user: Any) -> SteerOutput:
    """Get-or-create on the unique cache key: a racing request that stored it first wins."""
    p = params
    with transaction.atomic():
        row, created = SteerOutput.objects.get_or_create(
            cache_key=p.cache_key(half.type),
            defaults={
                "type": half.type, "model": p.model, "input_text": half.input_text,
                "chat_messages": p.messages(half.type), "output_text": half.text,
                "output_chat_messages": half.chat, "temperature": p.temperature,
                "num_tokens": p.n_tokens, "freq_penalty": p.freq_penalty, "seed": p.seed,
                "strength_multiplier": p.strength_multiplier, "steer_method": p.steer_method,
                "steer_special_tokens": p.steer_special_tokens, "version": STEERING_VERSION,
                "logprobs": half.logprobs,
                "creator": user if getattr(user, "pk", None) else None,
            })
        if created and half.type == SteerType.STEERED:
            SteerOutputFeature.objects.bulk_create(
                [SteerOutputFeature(steer_output=row, feature=t.feature, strength=t.strength)
                 for t in p.targets])
    return row


def _finish(plan: SteerPlan, generated: dict[str, GeneratedHalf], user: Any) -> SteerResult:
    rows = dict(plan.cached)
    for steer_type, half in generated.items():
        if steer_type not in rows:
            rows[steer_type] = _store_half(plan.params, half, user)
    missing = [t for t in TYPES if t not in rows]
    if missing:
        raise inference.InferenceError(f"the worker returned no {', '.join(missing)} output", status=502)
    steered, default = rows[SteerType.STEERED], rows[SteerType.DEFAULT]
    if steered.connected_default_output_id != default.pk:
        SteerOutput.objects.filter(pk=steered.pk).update(connected_default_output=default)
        steered.connected_default_output = default
    return SteerResult(plan.params, default, steered, frozenset(plan.cached))


def run_steer(plan: SteerPlan, *, user: Any = None,
              timeout: float = BLOCKING_TIMEOUT_SECONDS) -> SteerResult:
    """Generate the missing halves (waiting for the worker) and store them."""
    generated: dict[str, GeneratedHalf] = {}
    for types in plan.jobs():
        result = inference.run_inference(plan.params.model.id, "steer", plan.params.payload(types),
                                         source_names=plan.params.source_names, timeout=timeout)
        generated.update({t: h for t, h in _halves(plan.params, result).items() if t in types})
    return _finish(plan, generated, user)


async def arun_steer(plan: SteerPlan, *, user: Any = None,
                     timeout: float = BLOCKING_TIMEOUT_SECONDS) -> SteerResult:
    """`run_steer` for async views: waits for the worker on redis.asyncio, stores in a thread."""
    generated: dict[str, GeneratedHalf] = {}
    for types in plan.jobs():
        result = await inference.run_inference_async(
            plan.params.model.id, "steer", plan.params.payload(types),
            source_names=plan.params.source_names, timeout=timeout)
        generated.update({t: h for t, h in _halves(plan.params, result).items() if t in types})
    return await sync_to_async(_finish)(plan, generated, user)


def steer(*, model_id: str, features: Sequence[tuple[Any, float]], user: Any = None,
          **options: Any) -> SteerResult:
    """Plan and run a steering request: cached halves are reused, missing ones generated and stored.
    Options are those of `plan_steer`. Raises SteerInputError (400), SteerNotFound (404) or
    InferenceError / NoInferenceWorker (status on the exception)."""
    return run_steer(plan_steer(model_id=model_id, features=features, **options), user=user)


# --- streaming -------------------------------------------------------------------------------------

def _start_task(model_id: str, payload: dict[str, Any], call: inference.Call) -> None:
    """Publish one `steer` call on the model's queue without waiting (its partial results arrive on
    the Redis stream named by payload["streamKey"], its reply on the call's reply key)."""
    inference.send(call)


@dataclass
class SteerStream:
    """The started generations of a plan: one call (and one Redis stream) per worker job."""

    plan: SteerPlan
    calls: dict[str, tuple[list[str], inference.Call]]
    user: Any = None
    idle_timeout: float = STREAM_IDLE_SECONDS
    total_timeout: float = STREAM_TOTAL_SECONDS


async def astart_stream(plan: SteerPlan, *, user: Any = None, idle_timeout: float = STREAM_IDLE_SECONDS,
                        total_timeout: float = STREAM_TOTAL_SECONDS) -> SteerStream:
    """Admit and publish the missing halves before any response byte is sent, so a full queue or an
    unreachable broker is a plain 503 (InferenceBusy / InferenceUnavailable), not a broken stream."""
    p = plan.params
    started = SteerStream(plan, {}, user, idle_timeout, total_timeout)
    try:
        for types in plan.jobs():
            key = uuid.uuid4().hex
            call = inference.Call(p.model.id, "steer", p.payload(types, stream_key=key), total_timeout)
            await inference.aadmit(call, send=lambda c: _start_task(c.model_id, c.payload, c))
            started.calls[STREAM_PREFIX + key] = (types, call)
    except inference.InferenceError:
        for _, call in started.calls.values():
            await inference.arelease(call, cancel=True)
        raise
    return started


def _error(message: str, status: int) -> StreamEvent:
    return StreamEvent("error", error=inference.InferenceError(message, status=status))


async def astream_steer(started: SteerStream) -> AsyncIterator[StreamEvent]:
    """Relay the worker's Redis stream(s) on redis.asyncio: a `partial` event per batch of new tokens
    (whole text so far for every half, cached ones included), then one `final` event with the stored
    result, or one `error` event: the worker refused or died (its liveness key expired: within
    seconds), Redis failed, nothing arrived for `idle_timeout` s or `total_timeout` s passed. A stream
    whose reader goes away (client disconnect) cancels its calls, so the worker stops generating."""
    import redis  # noqa: PLC0415

    plan, p = started.plan, started.plan.params
    halves: dict[str, GeneratedHalf] = {
        t: GeneratedHalf(t, row.output_text, row.logprobs, row.output_chat_messages, row.input_text)
        for t, row in plan.cached.items()}
    client = inference.async_redis_client()
    last_ids = {name: "0-0" for name in started.calls}
    generated: dict[str, GeneratedHalf] = {}
    begun = last_progress = time.monotonic()
    try:
        while last_ids:
            now = time.monotonic()
            if now - last_progress > started.idle_timeout or now - begun > started.total_timeout:
                waited = now - last_progress if now - last_progress > started.idle_timeout else now - begun
                yield _error(f"steering timed out: no result from the inference worker after {waited:.0f} s",
                             504)
                return
            try:
                entries = await client.xread(last_ids, count=256, block=500)
            except (redis.RedisError, OSError):
                yield _error(inference.UNREACHABLE, 503)
                return
            if not entries:
                try:
                    for name in list(last_ids):
                        call = started.calls[name][1]
                        reply = await inference.atake_reply(call)
                        if reply is not None and not reply.get("ok"):
                            yield _error(reply.get("error", "inference failed"),
                                         int(reply.get("status", 502)))
                            return
                        await inference.acheck_progress(call)
                except inference.InferenceError as exc:
                    yield StreamEvent("error", error=exc)
                    return
                continue
            last_progress = time.monotonic()
            for raw_name, items in entries:
                name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
                types = started.calls[name][0]
                for entry_id, fields in items:
                    last_ids[name] = entry_id
                    data = json.loads(fields[b"data"])
                    for t, half in _halves(p, data).items():
                        if t in types:
                            halves[t] = half
                            generated[t] = half
                    if fields.get(b"done") == b"1":
                        last_ids.pop(name, None)
                        break
            yield StreamEvent("partial", halves=dict(halves))
        try:
            result = await sync_to_async(_finish)(plan, generated, started.user)
        except inference.InferenceError as exc:
            yield StreamEvent("error", error=exc)
            return
        yield StreamEvent("final", halves=dict(halves), result=result)
    finally:
        for name, (_, call) in started.calls.items():
            await inference.arelease(call, cancel=name in last_ids)
            with contextlib.suppress(redis.RedisError, OSError):
                await client.delete(name)
