"""Fixed-window counters in Django's cache (`CACHES`, Redis), and the client address they are keyed on.

Shared by the API rate limiter (neuronpedia/ratelimit.py) and the sign-in throttle
(neuronpedia/accounts/throttle.py), so that neither imports the other.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    address = request.META.get("REMOTE_ADDR", "") or "unknown"
    if getattr(settings, "NP_RATE_LIMIT_TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            address = forwarded.split(",")[0].strip() or address
    return address


def count_in_window(key: str, window: int) -> int:
    """Add one to the counter `key` in the cache, created with a `window`-second expiry; the new count."""
    cache.add(key, 0, timeout=window)
    try:
        return int(cache.incr(key))
    except ValueError:  # the counter expired between add and incr: this is the first of a new window
        cache.add(key, 1, timeout=window)
        return 1
