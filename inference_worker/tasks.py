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

import json
import os
import time
from collections.abc import Callable
from typing import Any

from celery import shared_task

CONFIG_ENV = "NP_INFERENCE_CONFIG"
STREAM_PREFIX = "np:stream:"
STREAM_TTL_SECONDS = 600


def worker_config() -> Any:
    from inference_worker.config import load_config  # noqa: PLC0415

    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(f"{CONFIG_ENV} is not set: start workers with manage.py inference_worker")
    return load_config(path)


_STATE: dict[str, Any] = {}


def loaded() -> Any:
    """The LoadedWorker of this process (model + sources), loaded once."""
    if "worker" not in _STATE:
        from inference_worker.runtime import get_worker  # noqa: PLC0415

        _STATE["worker"] = get_worker(worker_config())
    return _STATE["worker"]


def limits() -> Any:
    from inference_worker.ops import Limits  # noqa: PLC0415

    return Limits.from_config(loaded().config)


def _reply(fn: Callable[[dict[str, Any]], Any], payload: dict[str, Any]) -> dict[str, Any]:
    from inference_worker.saes import UnknownSourceError  # noqa: PLC0415

    try:
        return {"ok": True, "result": fn(payload)}
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


OPERATIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "tokenize": _tokenize,
    "activation_single": _activation_single,
    "search_all": _search_all,
    "topk_by_token": _topk_by_token,
    "active_features": _active_features,
    "sae_vector": _sae_vector,
    "topk_decoder_cossim": _topk_decoder_cossim,
    "steer": _steer,
}


def _make_task(name: str, fn: Callable[[dict[str, Any]], Any]) -> Any:
    @shared_task(name=f"inference_worker.tasks.{name}", acks_late=True, soft_time_limit=600,
                 time_limit=660)
    def task(payload: dict[str, Any]) -> dict[str, Any]:
        return _reply(fn, payload)

    task.__doc__ = f"{name}: a read-only model operation; safe to re-run."
    return task


TASKS = {name: _make_task(name, fn) for name, fn in OPERATIONS.items()}

# Dashboard generation runs on the same model queue (registered here so the worker knows the task).
from inference_worker import dashboard_tasks  # noqa: E402, F401
