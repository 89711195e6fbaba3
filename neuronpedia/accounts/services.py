"""API key lifecycle. The raw key leaves this module once, in the return value of create/rotate."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from neuronpedia.accounts.models import ApiKey, hash_key, new_raw_key


def create_api_key(*, user: Any, name: str = "default") -> tuple[ApiKey, str]:
    """Revoke the active key of that name (if any) and create a new one; returns (row, raw key).
    A user holds at most NP_API_KEYS_PER_USER active keys (rotating one does not count as another):
    a ValidationError says so. Rate limits count per user anyway, so more keys never buy more requests."""
    raw = new_raw_key()
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()  # one creation at a time
        active = ApiKey.objects.filter(user=user, revoked_at=None)
        rotated = active.filter(name=name).update(revoked_at=timezone.now())
        if not rotated and active.count() >= settings.NP_API_KEYS_PER_USER:
            raise ValidationError(
                f"You already have {settings.NP_API_KEYS_PER_USER} active API keys: revoke one, or create "
                "the new key with the name of an existing one to rotate it.")
        key = ApiKey.objects.create(user=user, name=name, key_hash=hash_key(raw), prefix=raw[:10])
    return key, raw


rotate_api_key = create_api_key


def revoke_api_key(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now())


def user_for_raw_key(raw_key: str) -> Any | None:
    key = (ApiKey.objects.select_related("user")
           .filter(key_hash=hash_key(raw_key), revoked_at=None).first())
    if key is None or not key.user.is_active:
        return None
    if key.last_used_at is None or (timezone.now() - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key.user
