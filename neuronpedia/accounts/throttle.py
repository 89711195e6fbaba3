"""Sign-in throttling: after NP_LOGIN_MAX_FAILURES wrong passwords for one username from one client
address within NP_LOGIN_LOCKOUT_SECONDS, that (username, address) pair is locked out until the window
ends, even with the right password. Counted in Django's Redis cache (`CACHES`), so every web process
shares the counts; enforced by the authentication backend, so the site's sign-in and the admin's are both
covered. Keyed on the pair (not the username alone) so that a stranger cannot lock the owner out from
elsewhere. When Redis is unreachable, sign-in works unthrottled and a warning is logged (like the API rate
limiter)."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

import redis
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest

from neuronpedia.lib.counters import client_address, count_in_window

logger = logging.getLogger(__name__)
KEY_PREFIX = "np:login-failures"


def _key(username: str, request: HttpRequest) -> str:
    who = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:24]
    return f"{KEY_PREFIX}:{who}:{client_address(request)}"


def seconds_locked(username: str, request: HttpRequest | None) -> int:
    """Seconds left of this pair's lockout; 0 when it may try."""
    if request is None or not username:
        return 0
    key = _key(username, request)
    try:
        found = cache.get_many([key, f"{key}:until"])
    except redis.RedisError as exc:
        logger.warning("sign-in throttle unavailable: %s", exc)
        return 0
    if int(found.get(key, 0)) < settings.NP_LOGIN_MAX_FAILURES:
        return 0
    until = float(found.get(f"{key}:until", 0))
    return max(1, math.ceil(until - time.time()))


def record_failure(username: str, request: HttpRequest | None) -> None:
    """Count a wrong password; the first failure of a window also notes when the window ends."""
    if request is None or not username:
        return
    key, window = _key(username, request), settings.NP_LOGIN_LOCKOUT_SECONDS
    try:
        if count_in_window(key, window) == 1:
            cache.set(f"{key}:until", time.time() + window, timeout=window)
    except redis.RedisError as exc:
        logger.warning("sign-in throttle unavailable: %s", exc)


def clear_failures(username: str, request: HttpRequest | None) -> None:
    if request is None or not username:
        return
    key = _key(username, request)
    try:
        cache.delete_many([key, f"{key}:until"])
    except redis.RedisError as exc:
        logger.warning("sign-in throttle unavailable: %s", exc)


class ThrottledModelBackend(ModelBackend):
    """Django's username/password backend, refusing a locked-out (username, address) pair outright."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> Any:
        username = username or kwargs.get("username") or ""
        if seconds_locked(username, request):
            raise PermissionDenied("too many failed sign-in attempts")  # stops the backend chain
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            record_failure(username, request)
        else:
            clear_failures(username, request)
        return user


def lockout_error(username: str, request: HttpRequest | None) -> ValidationError | None:
    seconds = seconds_locked(username, request)
    if not seconds:
        return None
    minutes = max(1, round(seconds / 60))
    return ValidationError(
        f"Too many failed sign-in attempts for {username} from your address. Sign-in is locked for about "
        f"{minutes} minute{'s' if minutes != 1 else ''}; try again later.", code="locked_out")


class ThrottledAuthenticationForm(AuthenticationForm):
    def get_invalid_login_error(self) -> ValidationError:
        return lockout_error(self.cleaned_data.get("username", ""), self.request) or \
            super().get_invalid_login_error()


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    def get_invalid_login_error(self) -> ValidationError:
        return lockout_error(self.cleaned_data.get("username", ""), self.request) or \
            super().get_invalid_login_error()
