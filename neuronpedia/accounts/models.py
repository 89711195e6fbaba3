from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

KEY_PREFIX = "np_"


def hash_key(raw_key: str) -> str:
    """Keys are long random strings, so a fast unsalted SHA-256 is the right tool (like GitHub)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def new_raw_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class ApiKey(models.Model):
    """A user's API key. Only the hash is stored; the raw key is shown once when created."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="first characters, to recognise the key")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    higher_limits = models.BooleanField(
        default=False, help_text="allow-listed for the higher rate-limit tier (NP_RATE_LIMITS_HIGHER)")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], condition=models.Q(revoked_at=None),
                                    name="apikey_one_active_per_name"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
