"""drf-spectacular extensions for the public API. Imported by features.api.views, so they are
registered before the schema is generated."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse

from features.api.serializers import ErrorSerializer


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """`x-api-key`: the header Neuronpedia's SDK sends (see neuronpedia.accounts.authentication)."""

    target_class = "neuronpedia.accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "x-api-key",
                "description": "Your API key (account page, or `manage.py create_api_key <user>`)."}


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


BAD_REQUEST = error("Invalid input; `message` says which field and why")
UNAUTHORIZED = error("No or invalid API key: set the x-api-key header")
FORBIDDEN = error("Authenticated, but not the owner")
NOT_FOUND = error("Not found, or not visible to the caller")
TOO_MANY = error("Rate limit exceeded: see the Retry-After header (neuronpedia/ratelimit.py)")


def errors(*, auth: bool = False, owner: bool = False, missing: bool = True,
           body: bool = True) -> dict[int, OpenApiResponse]:
    """The error responses an endpoint documents next to its success response."""
    responses = {400: BAD_REQUEST} if body else {}
    if auth:
        responses[401] = UNAUTHORIZED
    if owner:
        responses[403] = FORBIDDEN
    if missing:
        responses[404] = NOT_FOUND
    responses[429] = TOO_MANY
    return responses
