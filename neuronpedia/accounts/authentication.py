"""DRF authentication by the `x-api-key` header, as Neuronpedia's SDK sends it."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from neuronpedia.accounts.services import user_for_raw_key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    header = "HTTP_X_API_KEY"

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        raw = request.META.get(self.header, "").strip()
        if not raw:
            return None
        user = user_for_raw_key(raw)
        if user is None:
            raise exceptions.AuthenticationFailed("invalid or revoked API key (header x-api-key)")
        return user, None

    def authenticate_header(self, request: Request) -> str:
        return "x-api-key"
