"""Autointerp's own tables. Explanations and scores live in `features` (the feature page reads them);
this app holds the provider keys that explainers and scorers use."""

from __future__ import annotations

import base64
import hashlib

from django.conf import settings
from django.db import models

ENCRYPTED_PREFIX = "fernet:"


def _fernet():  # noqa: ANN202
    """Fernet (AES-128-CBC + HMAC-SHA256) keyed by NP_PROVIDER_KEY_SECRET, else derived from SECRET_KEY."""
    from cryptography.fernet import Fernet  # noqa: PLC0415

    secret = settings.NP_PROVIDER_KEY_SECRET or f"provider-keys:{settings.SECRET_KEY}"
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


def encrypt_secret(raw: str) -> str:
    return ENCRYPTED_PREFIX + _fernet().encrypt(raw.encode()).decode()


def decrypt_secret(stored: str) -> str:
    if not stored.startswith(ENCRYPTED_PREFIX):
        return stored  # a row written before encryption (migration 0002 encrypts them)
    return _fernet().decrypt(stored[len(ENCRYPTED_PREFIX):].encode()).decode()


class ProviderKey(models.Model):
    """An LLM provider key (OpenAI-compatible), per user or global (user = NULL). Encrypted at rest
    (`value` holds the Fernet token; `secret` decrypts it) and never echoed back: the API and UI show
    only the last four characters."""

    class Provider(models.TextChoices):
        OPENAI = "OPENAI", "OpenAI"
        OPENROUTER = "OPENROUTER", "OpenRouter"
        ANTHROPIC = "ANTHROPIC", "Anthropic"
        GOOGLE = "GOOGLE", "Google"
        CUSTOM = "CUSTOM", "OpenAI-compatible endpoint"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.CASCADE, related_name="provider_keys")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    base_url = models.URLField(blank=True)
    value = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "provider"],
                                               name="providerkey_unique", nulls_distinct=False)]

    def __str__(self) -> str:
        return f"{self.provider} {self.masked}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.value and not self.value.startswith(ENCRYPTED_PREFIX):
            self.value = encrypt_secret(self.value)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def secret(self) -> str:
        return decrypt_secret(self.value)

    @property
    def masked(self) -> str:
        secret = self.secret
        return f"…{secret[-4:]}" if len(secret) >= 8 else "…"
