"""Thin Celery tasks over the pure operations in `inference_worker.ops`.

The worker process started by `manage.py inference_worker --config FILE` consumes only
`inference.<model_id>`; the config path reaches the tasks through NP_INFERENCE_CONFIG. Payloads and
results are JSON in Neuronpedia's inference-server shapes (camelCase). Every task returns
`{"ok": true, "result": ...}` or `{"ok": false, "error": "...", "status": 4xx}`: a request that breaks
a limit or names an unknown source is the caller's error and is never retried. All tasks are pure reads
of the model, so re-running one is harmless.

torch and the model stack are imported lazily inside the tasks so that the web process can import
this module (to send tasks by name) without loading torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import shared_task
from celery.signals import task_revoked
from django.conf import settings

from inference_worker.protocol import STREAM_PREFIX

CONFIG_ENV = "NP_INFERENCE_CONFIG"
STREAM_TTL_SECONDS = 600


def worker_config() -> Any:
    from inference_worker.config import load_config  # noqa: PLC0415

    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(f"{CONFIG_ENV} is not set: start workers with manage.py inference_worker")
    return load_config(path)


_STATE: dict[str, Any] = {}


def loaded() -> Any:
    """The LoadedWorker of this process (model + sources), loaded once. With transcoder sets in the
    config, a thread re-checks them every NP_TRANSCODER_POLL_SECONDS (default 10): a set that finishes
    training is served (`{L}-NAME` sources in the heartbeat) without a restart."""
    if "worker" not in _STATE:
        from inference_worker.runtime import get_worker  # noqa: PLC0415

        worker = get_worker(worker_config())
        _STATE["worker"] = worker
        if worker.config.transcoder_sets:
            interval = float(settings.NP_TRANSCODER_POLL_SECONDS)
            threading.Thread(target=_watch_transcoders, args=(worker, interval), daemon=True,
                             name="transcoder-watch").start()
    return _STATE["worker"]


def _watch_transcoders(worker: Any, interval: float) -> None:
    while True:
        time.sleep(interval)
        with contextlib.suppress(Exception):  # refresh_transcoders logs what it could not load
            worker.refresh_transcoders()


def limits() -> Any:
    from inference_worker.ops import Limits  # noqa: PLC0415

    return Limits.from_config(loaded().config)


def _reply(fn: Callable[[dict[str, Any]], Any], payload: dict[str, Any]) -> dict[str, Any]:
    from inference_worker.saes import UnknownSourceError  # noqa: PLC0415
    from inference_worker.transcoders import TranscodersNotReady  # noqa: PLC0415

    try:
        return {"ok": True, "result": fn(payload)}
    except TranscodersNotReady as exc:  # still training: a state of the server, not a bad request
        return {"ok": False, "error": str(exc).strip("'\""), "status": 409}
    except (UnknownSourceError, LookupError) as exc:
        return {"ok": False, "error": str(exc).strip("'\""), "status": 404}
    except (ValueError, TypeError, KeyError) as exc:  # LimitError is a ValueError
        message = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        return {"ok": False, "error": message, "status": 400}


def _tokenize(p: dict[str, Any]) -> dict[str, Any]:
    from inference_worker.ops import tokenize  # noqa: PLC0415

    tokens = tokenize(loaded().model, p["text"], p.get("prependBos"), limits())
    return {"tokens": list(tokens.ids), "tokenStrings": list(tokens.strings),
            "tokensIsSpecial": list(tokens.is_special), "prependBos": tokens.prepend_bos}


def _activation_single(p: dict[str, Any]) -> dict[str, Any]:
    from inference_worker.ops import activation_single  # noqa: PLC0415

    w = loaded()
    source = w.registry.get(p["source"]) if p.get("source") else None
    result = activation_single(
        w.model, p["prompt"], source=source, index=p.get("index"), vector=p.get("vector"),
        hook=p.get("hook"), prepend_bos=p.get("prependBos"), ignore_bos=bool(p.get("ignoreBos")),
        limits=limits())
    return result.to_dict()


def _search_all(p: dict[str, Any]) -> dict[str, Any]:
    from inference_worker.ops import search_all  # noqa: PLC0415

    w = loaded()
    return search_all(
        w.model, w.registry, p["prompt"], source_set=p["sourceSet"],
        selected_sources=p.get("selectedSources") or (),
        sort_by_token_indexes=p.get("sortByTokenIndexes") or (),
        ignore_bos=bool(p.get("ignoreBos", True)), num_results=int(p.get("numResults", 25)),
        limits=limits()).to_dict()


def _topk_by_token(p: dict[str, Any]) -> dict[str, Any]:
    from inference_worker.ops import topk_by_token  # noqa: PLC0415

    w = loaded()
    return topk_by_token(w.model, w.registry.get(p["source"]), p["prompt"],
                         top_k=int(p.get("topK", 5)), ignore_bos=bool(p.get("ignoreBos", True)),
                         limits=limits()).to_dict()


def _active_features(p: dict[str, Any]) -> dict[str, Any]:
    from inference_worker.ops import active_features  # noqa: PLC0415

    w = loaded()
    return active_features(w.model, w.registry.get(p["source"]), p["prompt"],
                           ignore_bos=bool(p.get("ignoreBos", False)), limits=limits()).to_dict()


def _sae_vector(p: dict[str, Any]) -> dict[str, Any]:
    from inference_worker.ops import decoder_vector  # noqa: PLC0415

    return decoder_vector(loaded().registry.get(p["source"]), int(p["index"])).to_dict()


def _topk_decoder_cossim(p: dict[str, Any]) -> dict[str, Any]:
    from inference_worker.ops import topk_by_decoder_cossim  # noqa: PLC0415

    w = loaded()
    return topk_by_decoder_cossim(
        w.registry.get(p["source"]), index=p.get("index"), vector=p.get("vector"),
        num_results=int(p.get("numResults", 10)), model_id=w.config.model_id,
        limits=limits()).to_dict()


def steer_request(p: dict[str, Any]) -> Any:
    """Build a SteerRequest from Neuronpedia's /v1/steer/completion(-chat) fields."""
    from inference_worker.ops import ChatMessage, SteerFeature, SteerRequest, SteerVector  # noqa: PLC0415

    messages = p.get("messages")
    return SteerRequest(
        prompt=p.get("prompt") if messages is None else None,
        messages=None if messages is None else tuple(
            ChatMessage(m["role"], m["content"]) for m in messages),
        features=tuple(SteerFeature(f["source"], int(f["index"]), float(f["strength"]))
                       for f in p.get("features") or ()),
        vectors=tuple(SteerVector(v["hook"], tuple(v["steeringVector"]), float(v["strength"]))
                      for v in p.get("vectors") or ()),
        types=tuple(p.get("types") or ("STEERED", "DEFAULT")),
        strength_multiplier=float(p.get("strengthMultiplier", 1.0)),
        steer_method=p.get("steerMethod", "SIMPLE_ADDITIVE"),
        normalize_steering=bool(p.get("normalizeSteering", False)),
        n_tokens=int(p.get("nCompletionTokens", 32)),
        temperature=float(p.get("temperature", 0.0)),
        seed=int(p.get("seed", 0)),
        freq_penalty=float(p.get("freqPenalty", 0.0)),
        n_logprobs=int(p.get("nLogprobs", 0)),
        steer_special_tokens=bool(p.get("steerSpecialTokens", True)),
    )


def _steer(p: dict[str, Any]) -> dict[str, Any]:
    """Run to the end; with `streamKey`, also publish every partial result to a Redis stream."""
    from inference_worker.ops import steer_stream  # noqa: PLC0415

    w = loaded()
    stream = _Stream(p["streamKey"]) if p.get("streamKey") else None
    final = None
    for final in steer_stream(w.model, steer_request(p), w.registry, limits()):
        if stream is not None:
            stream.publish(final.to_dict(), done=final.done)
        if not final.done:
            _CURRENT.check()  # the caller gave up or the deadline passed: stop generating
    assert final is not None
    return final.to_dict()


class _Stream:
    """Partial steering results for the web side's SSE endpoint (XADD, expiring)."""

    def __init__(self, key: str) -> None:
        import redis  # noqa: PLC0415
        from django.conf import settings  # noqa: PLC0415

        self.key = STREAM_PREFIX + key
        self.client = redis.Redis.from_url(settings.REDIS_URL)
        self.last = 0.0

    def publish(self, data: dict[str, Any], *, done: bool) -> None:
        self.client.xadd(self.key, {"data": json.dumps(data), "done": int(done)}, maxlen=1000)
        if done or time.monotonic() - self.last > 5:
            self.client.expire(self.key, STREAM_TTL_SECONDS)
            self.last = time.monotonic()


def _graph_intervene(p: dict[str, Any]) -> dict[str, Any]:
    """Set transcoder features (graph nodes) at prompt positions to values: top next-token logits
    before/after and greedy continuations without/with (circuit-tracer's feature_intervention).
    Payload: {source_set, prompt, chat, interventions: [{layer, position, feature, value}], top_k,
    max_new_tokens} (graphs.services.intervention_payload)."""
    from inference_worker.attribution import intervene, parse_interventions  # noqa: PLC0415

    w = loaded()
    for key in ("source_set", "prompt", "interventions"):
        if key not in p:  # (a KeyError would read as an unknown source: 404)
            raise ValueError(f"missing field {key!r}")
    name, prompt = p["source_set"], p["prompt"]
    if not isinstance(name, str) or not name:
        raise ValueError("source_set must be a transcoder set name")
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("prompt must be a non-empty string")
    rm = w.replacement_model(name)
    tset = w.transcoder_set(name)
    try:
        interventions = parse_interventions(p["interventions"], tset.n_layers, tset.d_transcoder)
    except KeyError as exc:
        raise ValueError(f"each intervention needs layer, position, feature and value (missing {exc})") \
            from None
    return intervene(rm, prompt, bool(p.get("chat", False)), interventions,
                     top_k=int(p.get("top_k", 10)),
                     max_new_tokens=min(int(p.get("max_new_tokens", 12)), w.config.max_new_tokens),
                     token_limit=w.config.graph_token_limit, check=_CURRENT.check)


OPERATIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "tokenize": _tokenize,
    "activation_single": _activation_single,
    "search_all": _search_all,
    "topk_by_token": _topk_by_token,
    "active_features": _active_features,
    "sae_vector": _sae_vector,
    "topk_decoder_cossim": _topk_decoder_cossim,
    "steer": _steer,
    "graph_intervene": _graph_intervene,
}


class Stopped(Exception):
    """The call's caller gave up (cancel key) or its deadline passed while it ran."""


class _Call:
    """The request being run: its id and deadline (from `meta`), checked between steps of long
    operations. A call without meta (an old-style message) never stops early."""

    def __init__(self, meta: dict[str, Any] | None = None) -> None:
        self.id = (meta or {}).get("id")
        self.deadline = (meta or {}).get("deadline")
        self.model = (meta or {}).get("model", "")
        self.last_check = 0.0

    def stale(self) -> bool:
        return self.deadline is not None and time.time() > float(self.deadline)

    def cancelled(self) -> bool:
        from inference.client import CANCEL_PREFIX, redis_client  # noqa: PLC0415

        return bool(self.id) and bool(redis_client().exists(CANCEL_PREFIX + self.id))

    def check(self) -> None:
        """Cheap enough per generated token: the cancel key is read at most 4 times a second."""
        if self.stale():
            raise Stopped("deadline passed")
        if self.id and time.monotonic() - self.last_check > 0.25:
            self.last_check = time.monotonic()
            if self.cancelled():
                raise Stopped("cancelled by the caller")


_CURRENT = _Call()


def _count(model: str, what: str) -> None:
    from inference.client import STATS_PREFIX, redis_client  # noqa: PLC0415

    if model:
        redis_client().hincrby(STATS_PREFIX + model, what, 1)


def _run(fn: Callable[[dict[str, Any]], Any], payload: dict[str, Any],
         meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """Run one call: drop it unrun when stale or cancelled, claim it (so its caller can tell a dead
    worker from a slow one), push the reply where the caller waits."""
    global _CURRENT  # noqa: PLW0603
    from inference.client import CLAIM_PREFIX, REPLY_PREFIX, REPLY_TTL_SECONDS, redis_client  # noqa: PLC0415

    call = _Call(meta)
    if not call.id:
        return _reply(fn, payload)
    if call.stale() or call.cancelled():
        _count(call.model, "dropped_stale" if call.stale() else "dropped_cancelled")
        return None
    client = redis_client()
    ttl = max(1, int(float(call.deadline or time.time()) - time.time()) + 60)
    client.set(CLAIM_PREFIX + call.id, _STATE.get("name", ""), ex=ttl)
    _CURRENT = call
    reply: dict[str, Any] = {"ok": False, "error": "inference failed", "status": 502}
    try:
        reply = _reply(fn, payload)
        _count(call.model, "ran")
    except Stopped as exc:
        _count(call.model, "stopped_cancelled")
        reply = {"ok": False, "error": f"stopped: {exc}", "status": 504}
    except Exception as exc:  # a crash of the operation: answer it, then let Celery log it
        reply = {"ok": False, "error": f"inference failed: {type(exc).__name__}: {exc}", "status": 502}
        raise
    finally:
        _CURRENT = _Call()
        pipe = client.pipeline()
        pipe.rpush(REPLY_PREFIX + call.id, json.dumps(reply))
        pipe.expire(REPLY_PREFIX + call.id, REPLY_TTL_SECONDS)
        pipe.execute()
    return reply


def _make_task(name: str, fn: Callable[[dict[str, Any]], Any]) -> Any:
    # Acked when it starts (acks_late=False): an interactive call whose worker dies is answered 503 by
    # its caller within seconds; redelivering it hours later (visibility timeout) would serve nobody.
    @shared_task(name=f"inference_worker.tasks.{name}", acks_late=False, soft_time_limit=600,
                 time_limit=660)
    def task(payload: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any] | None:
        return _run(fn, payload, meta)

    task.__doc__ = f"{name}: a read-only model operation; safe to re-run."
    return task


@task_revoked.connect
def _expired(request: Any = None, expired: bool = False, **_: Any) -> None:
    """Celery drops a message whose `expires` passed before a worker took it: count it."""
    meta = ((getattr(request, "kwargs", None) or {}).get("meta") or {}) if request is not None else {}
    if expired and meta.get("model"):
        with contextlib.suppress(Exception):
            _count(meta["model"], "dropped_stale")


TASKS = {name: _make_task(name, fn) for name, fn in OPERATIONS.items()}
