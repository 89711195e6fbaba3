"""Cached steering generations. DEFAULT and STEERED halves are stored separately so either can be
reused; the cache key covers every generation parameter, so a repeated request with the same seed is
served from here without inference and its share link `/steer/{id}` reloads it."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from django.conf import settings
from django.db import models

from features.models import Feature, Model

SHARE_ID_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"


def new_share_id() -> str:
    return "".join(secrets.choice(SHARE_ID_ALPHABET) for _ in range(12))


class SteerType(models.TextChoices):
    DEFAULT = "DEFAULT", "Default"
    STEERED = "STEERED", "Steered"


class SteerMethod(models.TextChoices):
    SIMPLE_ADDITIVE = "SIMPLE_ADDITIVE", "Simple additive"
    ORTHOGONAL_DECOMP = "ORTHOGONAL_DECOMP", "Orthogonal decomposition"
    PROJECTION_CAP = "PROJECTION_CAP", "Projection cap"


def steer_cache_key(*, model_id: str, type: str, prompt: str | None,
                    chat_messages: list[dict[str, str]] | None, temperature: float, n_tokens: int,
                    freq_penalty: float, seed: int, strength_multiplier: float, steer_method: str,
                    steer_special_tokens: bool, features: list[tuple[str, float]],
                    version: int) -> str:
    """sha256 of every parameter that changes the output. `features` = (feature key, strength);
    DEFAULT outputs ignore the steering parameters, so one DEFAULT serves many STEERED variants."""
    steered = type == SteerType.STEERED
    payload: dict[str, Any] = {
        "model": model_id, "type": type, "prompt": prompt, "chat": chat_messages,
        "temperature": round(float(temperature), 6), "n_tokens": int(n_tokens),
        "freq_penalty": round(float(freq_penalty), 6), "seed": int(seed), "version": version,
        "steer_special_tokens": bool(steer_special_tokens) if steered else None,
        "strength_multiplier": round(float(strength_multiplier), 6) if steered else None,
        "steer_method": steer_method if steered else None,
        "features": sorted((key, round(float(s), 6)) for key, s in features) if steered else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class SteerOutput(models.Model):
    id = models.CharField(primary_key=True, max_length=16, default=new_share_id, editable=False)
    cache_key = models.CharField(max_length=64)
    type = models.CharField(max_length=8, choices=SteerType.choices)
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="steer_outputs")
    input_text = models.TextField(blank=True)
    chat_messages = models.JSONField(null=True, blank=True)
    output_text = models.TextField()
    output_chat_messages = models.JSONField(null=True, blank=True)
    temperature = models.FloatField()
    num_tokens = models.PositiveIntegerField()
    freq_penalty = models.FloatField(default=0)
    seed = models.BigIntegerField()
    strength_multiplier = models.FloatField(default=1)
    steer_method = models.CharField(max_length=20, choices=SteerMethod.choices,
                                    default=SteerMethod.SIMPLE_ADDITIVE)
    steer_special_tokens = models.BooleanField(default=True)
    version = models.PositiveSmallIntegerField(default=1)
    logprobs = models.JSONField(null=True, blank=True)
    connected_default_output = models.ForeignKey("self", null=True, blank=True,
                                                 on_delete=models.SET_NULL,
                                                 related_name="steered_outputs")
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cache_key"],
                                               name="steeroutput_unique_cache_key")]
        indexes = [models.Index(fields=["model", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class SteerOutputFeature(models.Model):
    """Which feature (or user vector, itself a Feature row) at which strength made a STEERED output."""

    steer_output = models.ForeignKey(SteerOutput, on_delete=models.CASCADE,
                                     related_name="steer_features")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="+")
    strength = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["steer_output", "feature"],
                                               name="steerfeature_unique")]

    def __str__(self) -> str:
        return f"{self.feature_id}×{self.strength}"
