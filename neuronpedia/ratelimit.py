"""Rate limits for /api, per user (whichever of their API keys, or their session) or per client IP when
anonymous, and per endpoint prefix.

Neuronpedia limits each endpoint prefix per hour (shared/reference/neuronpedia.md §2.1); those figures
are the defaults and `NP_RATE_LIMITS` overrides or adds prefixes (`/api/steer=500,/api/list=100`).
API keys allow-listed by an administrator (`ApiKey.higher_limits`: the admin, or
`manage.py create_api_key --higher-limits`) get Neuronpedia's "higher" tier instead, merged over the
normal limits and overridden the same way by `NP_RATE_LIMITS_HIGHER`. The
longest configured prefix that a path starts with is the one applied (`/api` is the global fallback);
a limit of 0 means unlimited. Counting is a fixed window in Django's Redis cache (`CACHES`): an
`add` that creates the window's counter with its expiry, then an atomic `incr`, so every web process
shares the counts. A refused request gets 429 JSON with
`Retry-After`; every counted response carries `x-limit-remaining`. When Redis is unreachable the
limiter lets requests through and logs a warning: an outage of the limiter must not take the API down.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from neuronpedia.lib.counters import client_address, count_in_window
from neuronpedia.lib.env import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_RATE_LIMITS: dict[str, int] = {
    "/api": 25_000,
    "/api/activation/new": 1_000,
    "/api/explanation/search": 200,
    "/api/explanation/score": 120,
    "/api/steer": 240,
    "/api/steer-load": 0,
    "/api/search-topk-by-token": 500,
    "/api/search-all": 1_600,
    "/api/graph/generate": 30,
    "/api/lens/prompt": 240,
    "/api/lens/share": 30,
    "/api/model/new": 5,
    "/api/source-set/new": 10,
    "/api/saelens/latent-decoder": 3_600,
    "/api/nla/completion": 240,
    "/api/nla/explain": 120,
    "/api/nla/sources": 1_200,
}


# Neuronpedia's "higher" tier, where it differs from the normal one.
HIGHER_TIER: dict[str, int] = {
    "/api/activation/new": 3_000,
    "/api/explanation/search": 3_000,
    "/api/steer": 1_000,
    "/api/search-topk-by-token": 1_200,
    "/api/graph/generate": 320,
    "/api/lens/prompt": 480,
    "/api/lens/share": 100,
}


def parse_rate_limits(raw: str, base: dict[str, int] | None = None, *,
                      variable: str = "NP_RATE_LIMITS") -> dict[str, int]:
    """`"/api/steer=500, /api/list=100"` merged over `base` (the defaults). Raises ConfigError."""
    limits = dict(DEFAULT_RATE_LIMITS if base is None else base)
    for item in filter(None, (part.strip() for part in raw.split(","))):
        prefix, sep, value = item.partition("=")
        prefix = prefix.strip()
        if not sep or not prefix.startswith("/"):
            raise ConfigError(f"{variable} entry {item!r} must look like /api/prefix=COUNT")
        try:
            count = int(value)
        except ValueError:
            raise ConfigError(f"{variable} entry {item!r}: {value.strip()!r} is not an integer") from None
        if count < 0:
            raise ConfigError(f"{variable} entry {item!r}: the count must be 0 (unlimited) or more")
        limits[prefix.rstrip("/") or "/"] = count
    return limits


@dataclass(frozen=True)
class Decision:
    prefix: str
    limit: int
    remaining: int
    retry_after: int

    @property
    def allowed(self) -> bool:
        return self.remaining >= 0


def matching_prefix(path: str, limits: dict[str, int]) -> str | None:
    """The longest configured prefix of `path` (`/api/steer` covers `/api/steer-chat`)."""
    best = None
    for prefix in limits:
        if path.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


@dataclass(frozen=True)
class Client:
    identity: str
    higher: bool = False


def client_identity(request: HttpRequest) -> Client:
    """`user:<id>` for a request with an active API key (and whether that key is allow-listed for the
    higher tier) or a signed-in session, else `ip:<client address>`. Counting per user, not per key, means
    that more keys (or a key plus the browser) never buy more requests; made-up keys count against the
    caller's address, so rotating them does not escape the limit either."""
    raw_key = request.META.get("HTTP_X_API_KEY", "").strip()
    if raw_key:
        from neuronpedia.accounts.models import ApiKey, hash_key

        found = ApiKey.objects.filter(key_hash=hash_key(raw_key), revoked_at=None,
                                      user__is_active=True).values_list("user_id", "higher_limits").first()
        if found is not None:
            return Client(f"user:{found[0]}", found[1])
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Client(f"user:{user.pk}")
    return Client("ip:" + client_address(request))


def hit(*, prefix: str, limit: int, identity: str, window: int, now: float | None = None) -> Decision:
    """Count one request in the current fixed window and decide; `remaining` < 0 means refused."""
    now = time.time() if now is None else now
    window_index = int(now // window)
    key = f"{settings.NP_RATE_LIMIT_KEY_PREFIX}:{prefix}:{identity}:{window_index}"
    count = count_in_window(key, window + 1)
    retry_after = max(1, math.ceil((window_index + 1) * window - now))
    return Decision(prefix=prefix, limit=limit, remaining=limit - count, retry_after=retry_after)


def check(request: HttpRequest) -> Decision | None:
    """The decision for this request, or None when no limit applies (or Redis is unreachable)."""
    if not settings.NP_RATE_LIMIT_ENABLED:
        return None
    import redis

    try:
        client = client_identity(request)
        limits: dict[str, int] = settings.NP_RATE_LIMITS_HIGHER if client.higher else settings.NP_RATE_LIMITS
        prefix = matching_prefix(request.path, limits)
        if prefix is None or limits[prefix] <= 0:
            return None
        return hit(prefix=prefix, limit=limits[prefix], identity=client.identity,
                   window=settings.NP_RATE_LIMIT_WINDOW_SECONDS)
    except redis.RedisError as exc:
        logger.warning("rate limiter unavailable, request let through: %s", exc)
        return None


def too_many_requests(decision: Decision, window: int) -> JsonResponse:
    response = JsonResponse(
        {
            "message": (f"Rate limit exceeded: {decision.limit} requests per {window} s on "
                        f"{decision.prefix}. Retry after {decision.retry_after} s, or ask the "
                        "administrators of this server for a higher limit."),
            "endpoint": decision.prefix,
            "limit": decision.limit,
            "window": window,
        },
        status=429,
    )
    response["Retry-After"] = str(decision.retry_after)
    response["x-limit-remaining"] = "0"
    return response


class RateLimitMiddleware:
    """Applies `check` to every request under /api (API views, schema and docs alike)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api"):
            return self.get_response(request)
        decision = check(request)
        if decision is not None and not decision.allowed:
            return too_many_requests(decision, settings.NP_RATE_LIMIT_WINDOW_SECONDS)
        if decision is not None:
            request.np_limit_remaining = max(0, decision.remaining)  # type: ignore[attr-defined]
        response = self.get_response(request)
        if decision is not None:
            response["x-limit-remaining"] = str(max(0, decision.remaining))
        return response
