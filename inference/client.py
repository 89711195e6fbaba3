"""The web side of inference: which workers are live, and calling them through their model's queue.

Liveness lives in Redis, not in the database: every inference worker refreshes `np:alive:<name>` (its
model, queue and sources) every second with a short TTL (settings.INFERENCE_LIVENESS_TTL_SECONDS, 4 s),
so a worker that is killed (-9, OOM, a lost machine) stops being live within seconds. The InferenceHost
rows stay as the catalog of workers (model, device, dtype, sources); `live_hosts` returns those whose
Redis key exists.

A call (`run_inference`, or `run_inference_async` for async views) is one Celery message on
`inference.<model_id>` that carries its request id and deadline (Celery `expires` and `meta.deadline`):

- admission: each model has a bounded set of calls in flight (settings.INFERENCE_QUEUE_LIMIT, a Redis
  sorted set scored by deadline, so a caller that crashed frees its slot at its deadline); a call over
  the bound gets InferenceBusy (503 + Retry-After) at once instead of waiting in a long queue.
- the worker claims the call (`np:claim:<id>` = its name), drops it unrun when its deadline has passed
  or its caller cancelled it, and pushes the reply to `np:reply:<id>`.
- the caller waits on that list in short slices (a thread with blocking BLPOP, or redis.asyncio without
  holding a thread); between slices it checks that the claiming worker (or, while unclaimed, some
  worker of the model) is still live. A dead worker is reported within TTL + one slice (≤ 5 s) as 503,
  a deadline as 504; a caller that gives up sets `np:cancel:<id>` so the worker skips or stops it.
- Redis unreachable → InferenceUnavailable (503) within about a second, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from features import hosts
from features.hosts import CLIENT_OPTIONS, live_cutoff, live_hosts, live_source_names, redis_client  # noqa: F401  (callers use them here)
from features.hosts import decode as _decode
from features.hosts import live_from as _live_from
from features.models import InferenceHost, Model, Source
from inference_worker.protocol import (  # the contract both sides import
    ALIVE_PREFIX,
    CANCEL_PREFIX,
    CLAIM_PREFIX,
    INFLIGHT_PREFIX,
    REPLY_PREFIX,
    STATS_PREFIX,
    STREAM_PREFIX,  # noqa: F401  (steering relays the worker's streams under it)
    TASK_PREFIX,
    WORKERS_PREFIX,
)
from neuronpedia.queues import inference_queue

logger = logging.getLogger(__name__)

REPLY_TTL_SECONDS = 120
POLL_SECONDS = 0.5  # how often a waiting caller checks that its worker is still live
UNREACHABLE = "inference is unavailable: the message broker (Redis) cannot be reached; try again shortly"


def liveness_ttl() -> float:
    return float(getattr(settings, "INFERENCE_LIVENESS_TTL_SECONDS", 4))


def queue_limit() -> int:
    return int(getattr(settings, "INFERENCE_QUEUE_LIMIT", 8))


def retry_after_seconds() -> int:
    return int(getattr(settings, "INFERENCE_RETRY_AFTER_SECONDS", 5))


class InferenceError(Exception):
    """The worker refused the request (a limit, an unknown source...). `status` is the HTTP status;
    `retry_after` (seconds) is set for the 503s a client should retry."""

    def __init__(self, message: str, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class NoInferenceWorker(InferenceError):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=503, retry_after=retry_after_seconds())


class InferenceUnavailable(NoInferenceWorker):
    """Redis (the broker and the liveness store) cannot be reached."""

    def __init__(self, message: str = UNREACHABLE) -> None:
        super().__init__(message)


class InferenceBusy(InferenceError):
    """The model's queue is full: retry after `retry_after` seconds."""

    def __init__(self, model_id: str, limit: int) -> None:
        super().__init__(f"the inference queue of {model_id!r} is full ({limit} requests in flight); "
                         f"retry in a few seconds", status=503, retry_after=retry_after_seconds())


class WorkerLost(InferenceError):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=503, retry_after=retry_after_seconds())


# --- Redis clients -------------------------------------------------------------------------------

_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]] = (
    weakref.WeakKeyDictionary())


def async_redis_client() -> aioredis.Redis:
    """The redis.asyncio client of the running event loop (its connections belong to that loop)."""
    url = settings.REDIS_URL
    per_loop = _async_clients.setdefault(asyncio.get_running_loop(), {})
    if url not in per_loop:
        per_loop[url] = aioredis.Redis.from_url(url, **CLIENT_OPTIONS)
    return per_loop[url]


# --- liveness ------------------------------------------------------------------------------------

def live_workers(model_id: str) -> dict[str, dict[str, Any]]:
    """name -> {model, queue, sources} of the workers of `model_id` whose heartbeat key is alive.
    Raises InferenceUnavailable when Redis cannot be reached."""
    try:
        return hosts.live_worker_info(model_id)
    except redis.RedisError:
        raise InferenceUnavailable() from None


async def alive_workers(model_id: str) -> dict[str, dict[str, Any]]:
    """`live_workers` on redis.asyncio."""
    client = async_redis_client()
    key = WORKERS_PREFIX + model_id
    try:
        names = sorted(_decode(n) for n in await client.smembers(key))
        values = await client.mget([ALIVE_PREFIX + n for n in names]) if names else []
        live, dead = _live_from(names, values)
        if dead:
            await client.srem(key, *dead)
    except (redis.RedisError, OSError):
        raise InferenceUnavailable() from None
    return live


def beat(name: str, model_id: str, source_names: Iterable[str]) -> None:
    """A worker's liveness heartbeat: its key lives for INFERENCE_LIVENESS_TTL_SECONDS."""
    info = json.dumps({"model": model_id, "queue": inference_queue(model_id),
                       "sources": sorted(source_names), "at": time.time()})
    pipe = redis_client().pipeline()
    pipe.set(ALIVE_PREFIX + name, info, px=int(liveness_ttl() * 1000))
    pipe.sadd(WORKERS_PREFIX + model_id, name)
    pipe.expire(WORKERS_PREFIX + model_id, 86400)
    pipe.execute()


def mark_dead(name: str, model_id: str | None = None) -> None:
    with contextlib.suppress(redis.RedisError):
        redis_client().delete(ALIVE_PREFIX + name)
        if model_id:
            redis_client().srem(WORKERS_PREFIX + model_id, name)


def _check_live(model_id: str, live: dict[str, dict[str, Any]], source_names: Iterable[str]) -> None:
    if not live:
        raise NoInferenceWorker(
            f"no inference worker is serving model {model_id!r}; start one with "
            f"`python manage.py inference_worker --config <file>` (see README)")
    served = {s for info in live.values() for s in info.get("sources", [])}
    missing = set(source_names) - served
    if missing:
        raise NoInferenceWorker(
            f"the inference worker of {model_id!r} does not serve {', '.join(sorted(missing))}")


def require_live(model_id: str, source_names: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Raise NoInferenceWorker (or InferenceUnavailable) with a clear message unless a live worker
    serves all of these; returns the live workers."""
    live = live_workers(model_id)
    _check_live(model_id, live, source_names)
    return live


async def arequire_live(model_id: str, source_names: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    live = await alive_workers(model_id)
    _check_live(model_id, live, source_names)
    return live


def register_host(*, name: str, model: Model, device: str, dtype: str,
                  source_names: Iterable[str], info: dict[str, Any] | None = None) -> InferenceHost:
    """Create or refresh the row of a starting worker and mark it live. Safe to call again."""
    source_names = list(source_names)
    with transaction.atomic():
        host, _ = InferenceHost.objects.update_or_create(
            name=name,
            defaults={"model": model, "queue": inference_queue(model.id), "device": device,
                      "dtype": dtype, "heartbeat_at": timezone.now(), "info": info or {}},
        )
        host.sources.set(Source.objects.filter(model=model, name__in=source_names))
    try:
        beat(name, model.id, source_names)
    except redis.RedisError as exc:
        logger.warning("could not mark %s live in Redis: %s", name, exc)
    return host


def heartbeat(name: str) -> bool:
    """The database heartbeat (catalog freshness); False when the row is gone."""
    return InferenceHost.objects.filter(name=name).update(heartbeat_at=timezone.now()) == 1


def unregister_host(name: str) -> None:
    model_id = InferenceHost.objects.filter(name=name).values_list("model_id", flat=True).first()
    mark_dead(name, model_id)
    InferenceHost.objects.filter(name=name).delete()


# --- calls ---------------------------------------------------------------------------------------

# Admission to a model's bounded set of calls in flight: drop entries whose deadline passed (their
# caller is gone), refuse when full, else add this call. Atomic, shared by every web process.
ADMIT_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local limit = tonumber(ARGV[2])
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return -1 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return redis.call('ZCARD', KEYS[1])
"""


@dataclass
class Call:
    """One inference request: its id (= Celery task id), deadline and the payload the worker gets."""

    model_id: str
    operation: str
    payload: dict[str, Any]
    timeout: float = 120.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.time)

    @property
    def deadline(self) -> float:
        return self.started + self.timeout

    def remaining(self) -> float:
        return self.deadline - time.time()

    @property
    def meta(self) -> dict[str, Any]:
        return {"id": self.id, "deadline": self.deadline, "model": self.model_id}

    def admit_args(self) -> tuple[list[str], list[Any]]:
        now = time.time()
        return ([INFLIGHT_PREFIX + self.model_id],
                [now, queue_limit(), self.deadline, self.id, math.ceil(self.timeout) + 60])

    def timed_out(self) -> InferenceError:
        return InferenceError(f"inference timed out after {self.timeout:.0f} s", status=504)


def send(call: Call) -> None:
    """Publish the call's Celery message (with `expires` = its deadline) without retrying: a broker
    that cannot be reached is InferenceUnavailable now, not a retry loop."""
    from kombu.exceptions import KombuError  # noqa: PLC0415

    from neuronpedia.celery import app  # noqa: PLC0415

    try:
        app.send_task(TASK_PREFIX + call.operation, kwargs={"payload": call.payload, "meta": call.meta},
                      queue=inference_queue(call.model_id), task_id=call.id,
                      expires=datetime.fromtimestamp(call.deadline, UTC), retry=False,
                      ignore_result=True)
    except (KombuError, redis.RedisError, OSError):
        raise InferenceUnavailable() from None


def _busy(call: Call, admitted: Any) -> None:
    if int(admitted) < 0:
        raise InferenceBusy(call.model_id, queue_limit())


def _unwrap(reply: dict[str, Any]) -> dict[str, Any]:
    if not reply.get("ok"):
        raise InferenceError(reply.get("error", "inference failed"), status=int(reply.get("status", 400)))
    return reply["result"]


def _lost(call: Call, claimer: Any) -> WorkerLost:
    return WorkerLost(f"the inference worker {_decode(claimer)} stopped while running this request "
                      f"(killed or crashed); try again when a worker is live")


# sync ---------------------------------------------------------------------------------------------

def admit(call: Call) -> None:
    """Take a slot in the model's queue (InferenceBusy when full) and publish the message."""
    client = redis_client()
    keys, args = call.admit_args()
    try:
        _busy(call, client.eval(ADMIT_SCRIPT, len(keys), *keys, *args))
    except redis.RedisError:
        raise InferenceUnavailable() from None
    try:
        send(call)
    except InferenceError:
        release(call)
        raise


def release(call: Call, *, cancel: bool = False) -> None:
    """Free the call's slot; with `cancel`, tell the worker to skip (or stop) it."""
    client = redis_client()
    with contextlib.suppress(redis.RedisError):
        pipe = client.pipeline()
        pipe.zrem(INFLIGHT_PREFIX + call.model_id, call.id)
        if cancel:
            pipe.set(CANCEL_PREFIX + call.id, 1, ex=max(1, math.ceil(call.remaining())) + 60)
        pipe.execute()


def check_progress(call: Call) -> None:
    """Raise when nobody will answer: the claiming worker died, or no worker of the model is live."""
    client = redis_client()
    try:
        claimer = client.get(CLAIM_PREFIX + call.id)
        if claimer is not None:
            if not client.exists(ALIVE_PREFIX + _decode(claimer)):
                raise _lost(call, claimer)
            return
    except redis.RedisError:
        raise InferenceUnavailable() from None
    _check_live(call.model_id, live_workers(call.model_id), ())


def wait(call: Call) -> dict[str, Any]:
    """Block (this thread) until the worker's reply, a dead worker or the deadline."""
    client = redis_client()
    key = REPLY_PREFIX + call.id
    while True:
        remaining = call.remaining()
        if remaining <= 0:
            raise call.timed_out()
        try:
            got = client.blpop([key], timeout=max(0.01, min(POLL_SECONDS, remaining)))
        except redis.RedisError:
            raise InferenceUnavailable() from None
        if got:
            return json.loads(got[1])
        check_progress(call)


def run_inference(model_id: str, operation: str, payload: dict[str, Any], *,
                  source_names: Iterable[str] = (), timeout: float = 120.0) -> dict[str, Any]:
    """Send `operation` to the model's queue and wait (blocking this thread) for its JSON result.
    Raises NoInferenceWorker / InferenceUnavailable / InferenceBusy / WorkerLost (503), InferenceError
    with the worker's status (400, 404) or 504 at the deadline."""
    require_live(model_id, source_names)
    call = Call(model_id, operation, payload, timeout)
    admit(call)
    finished = False
    try:
        reply = wait(call)
        finished = True
    finally:
        release(call, cancel=not finished)
    return _unwrap(reply)


# async --------------------------------------------------------------------------------------------

async def aadmit(call: Call, send: Callable[[Call], None] | None = None) -> None:
    """`admit` on redis.asyncio; `send` publishes the message (in a thread: Celery is synchronous)."""
    client = async_redis_client()
    keys, args = call.admit_args()
    try:
        _busy(call, await client.eval(ADMIT_SCRIPT, len(keys), *keys, *args))
    except (redis.RedisError, OSError):
        raise InferenceUnavailable() from None
    try:
        await asyncio.to_thread(send or globals()["send"], call)
    except InferenceError:
        await arelease(call)
        raise


async def arelease(call: Call, *, cancel: bool = False) -> None:
    client = async_redis_client()
    with contextlib.suppress(redis.RedisError, OSError):
        pipe = client.pipeline()
        pipe.zrem(INFLIGHT_PREFIX + call.model_id, call.id)
        if cancel:
            pipe.set(CANCEL_PREFIX + call.id, 1, ex=max(1, math.ceil(call.remaining())) + 60)
        await pipe.execute()


async def acheck_progress(call: Call) -> None:
    client = async_redis_client()
    try:
        claimer = await client.get(CLAIM_PREFIX + call.id)
        if claimer is not None:
            if not await client.exists(ALIVE_PREFIX + _decode(claimer)):
                raise _lost(call, claimer)
            return
    except (redis.RedisError, OSError):
        raise InferenceUnavailable() from None
    _check_live(call.model_id, await alive_workers(call.model_id), ())


async def atake_reply(call: Call) -> dict[str, Any] | None:
    """The worker's reply if it is there (no waiting)."""
    try:
        raw = await async_redis_client().lpop(REPLY_PREFIX + call.id)
    except (redis.RedisError, OSError):
        raise InferenceUnavailable() from None
    return None if raw is None else json.loads(raw)


async def await_reply(call: Call) -> dict[str, Any]:
    """Wait on redis.asyncio (no thread held) for the reply, a dead worker or the deadline."""
    client = async_redis_client()
    key = REPLY_PREFIX + call.id
    while True:
        remaining = call.remaining()
        if remaining <= 0:
            raise call.timed_out()
        try:
            got = await client.blpop([key], timeout=max(0.01, min(POLL_SECONDS, remaining)))
        except (redis.RedisError, OSError):
            raise InferenceUnavailable() from None
        if got:
            return json.loads(got[1])
        await acheck_progress(call)


async def run_inference_async(model_id: str, operation: str, payload: dict[str, Any], *,
                              source_names: Iterable[str] = (), timeout: float = 120.0) -> dict[str, Any]:
    """`run_inference` for async views: waits on redis.asyncio without holding a thread. A caller that
    is cancelled (client gone) cancels the call on the worker side too."""
    await arequire_live(model_id, source_names)
    call = Call(model_id, operation, payload, timeout)
    await aadmit(call)
    finished = False
    try:
        reply = await await_reply(call)
        finished = True
    finally:
        await asyncio.shield(arelease(call, cancel=not finished))
    return _unwrap(reply)


def stats(model_id: str) -> dict[str, int]:
    """Counters the workers keep per model: ran, dropped_stale, dropped_cancelled, stopped_cancelled."""
    raw = redis_client().hgetall(STATS_PREFIX + model_id)
    return {_decode(k): int(v) for k, v in raw.items()}


def in_flight(model_id: str) -> int:
    client = redis_client()
    client.zremrangebyscore(INFLIGHT_PREFIX + model_id, "-inf", time.time())
    return int(client.zcard(INFLIGHT_PREFIX + model_id))


def ensure_catalog_for_worker(*, model_id: str, layers: int, dimension: int, instruct: bool,
                              sources: list[dict[str, Any]]) -> Model:
    """Create the Model/SourceSet/Source rows a worker serves when they are missing (a model loaded by
    name or from a folder becomes browsable at once). Existing rows are left as they are."""
    from features.models import SourceSet, parse_source_id  # noqa: PLC0415

    with transaction.atomic():
        model, _ = Model.objects.get_or_create(
            id=model_id, defaults={"display_name": model_id, "layers": layers,
                                   "dimension": dimension, "instruct": instruct})
        for spec in sources:
            parsed = parse_source_id(spec["id"])
            source_set, _ = SourceSet.objects.get_or_create(model=model, name=parsed.set_name)
            Source.objects.get_or_create(
                model=model, name=spec["id"],
                defaults={"source_set": source_set, "layer": parsed.layer,
                          "hook_name": spec.get("hook_name", ""),
                          "num_features": spec.get("d_sae"),
                          "saelens_config": spec.get("config", {}),
                          "local_path": spec.get("path") or ""})
    return model
