"""Which inference workers are live, as the catalog's pages show it (the read side of the host registry).

Each worker keeps `np:alive:<name>` alive in Redis with a short TTL and lists itself under
`np:workers:<model>` (keys from inference_worker.protocol, the contract every side imports); its
InferenceHost row is the catalog of workers. The `inference` app writes both; pages read them here. A Redis
that cannot be reached reads as "no worker live".
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from features.models import InferenceHost
from inference_worker.protocol import ALIVE_PREFIX, WORKERS_PREFIX

CLIENT_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 1.0, "socket_timeout": 5.0}
_sync_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis:
    """A process-wide client of settings.REDIS_URL with short connect/read timeouts."""
    url = settings.REDIS_URL
    if url not in _sync_clients:
        _sync_clients[url] = redis.Redis.from_url(url, **CLIENT_OPTIONS)
    return _sync_clients[url]


def decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def live_from(names: list[str], values: list[Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    live, dead = {}, []
    for name, value in zip(names, values, strict=True):
        if value:
            live[name] = json.loads(value)
        else:
            dead.append(name)
    return live, dead


def live_worker_info(model_id: str) -> dict[str, dict[str, Any]]:
    """name -> {model, queue, sources} of the workers of `model_id` whose liveness key exists (dead names
    are dropped from the model's set). Raises redis.RedisError when Redis cannot be reached."""
    client = redis_client()
    key = WORKERS_PREFIX + model_id
    names = sorted(decode(n) for n in client.smembers(key))
    live, dead = live_from(names, client.mget([ALIVE_PREFIX + n for n in names]) if names else [])
    if dead:
        client.srem(key, *dead)
    return live


def live_hosts(model_id: str) -> QuerySet[InferenceHost]:
    """The InferenceHost rows of `model_id` whose worker is alive now (none when Redis is down)."""
    try:
        names = list(live_worker_info(model_id))
    except redis.RedisError:
        return InferenceHost.objects.none()
    return InferenceHost.objects.filter(model_id=model_id, name__in=names)


def live_source_names(model_id: str) -> set[str]:
    try:
        live = live_worker_info(model_id)
    except redis.RedisError:
        return set()
    return {s for info in live.values() for s in info.get("sources", [])}


def live_cutoff() -> Any:
    """Rows older than this have not heard from their worker for three database heartbeats (the
    catalog's view; liveness itself is the Redis key)."""
    return timezone.now() - timedelta(seconds=3 * settings.INFERENCE_HEARTBEAT_SECONDS)
