from __future__ import annotations

import pytest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIRequestFactory

from neuronpedia.accounts.authentication import ApiKeyAuthentication
from neuronpedia.accounts.models import ApiKey, hash_key
from neuronpedia.accounts.services import create_api_key, rotate_api_key

pytestmark = pytest.mark.django_db


def _authenticate(raw: str):
    request = APIRequestFactory().get("/api/x", HTTP_X_API_KEY=raw)
    return ApiKeyAuthentication().authenticate(request)


def test_only_the_hash_of_a_key_is_stored(alice) -> None:
    key, raw = create_api_key(user=alice)
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == hash_key(raw)
    assert raw not in {stored.key_hash, stored.prefix, stored.name}


def test_x_api_key_header_authenticates_the_owner(alice) -> None:
    _, raw = create_api_key(user=alice)
    user, _ = _authenticate(raw)
    assert user == alice


def test_rotation_revokes_the_previous_key(alice) -> None:
    _, old = create_api_key(user=alice)
    _, new = rotate_api_key(user=alice)
    assert _authenticate(new)[0] == alice
    with pytest.raises(AuthenticationFailed, match="invalid or revoked"):
        _authenticate(old)


def test_no_header_means_anonymous() -> None:
    request = APIRequestFactory().get("/api/x")
    assert ApiKeyAuthentication().authenticate(request) is None


def test_create_api_key_command_prints_a_working_key(alice, capsys) -> None:
    from django.core.management import call_command

    call_command("create_api_key", "alice")
    raw = capsys.readouterr().out.strip()
    assert _authenticate(raw)[0] == alice
