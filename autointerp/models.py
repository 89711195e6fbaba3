"""Autointerp's own tables. Explanations and scores live in `features` (the feature page reads them);
this app holds the provider keys that explainers and scorers use."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ProviderKey(models.Model):
    """An LLM provider key (OpenAI-compatible), per user or global (user = NULL). Never echoed back:
    the API and UI show only the last four characters."""

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
        return f"{self.provider} …{self.value[-4:]}"

    @property
    def masked(self) -> str:
        return f"…{self.value[-4:]}" if len(self.value) >= 8 else "…"
