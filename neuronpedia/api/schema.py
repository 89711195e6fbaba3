"""drf-spectacular extensions and the error responses every app's API documents, and `validated`. Imported
by every API view module, so the extensions are registered before the schema is generated."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request

from neuronpedia.parsers import SafeJSONParser


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """`x-api-key`: the header Neuronpedia's SDK sends (see neuronpedia.accounts.authentication)."""

    target_class = "neuronpedia.accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "x-api-key",
                "description": "Your API key (account page, or `manage.py create_api_key <user>`)."}


# Request bodies are JSON only, as Neuronpedia's (`request.json()`): nested bodies have no form encoding,
# and a form or multipart body would otherwise be parsed (and documented) as something else. Nesting is
# depth-limited (neuronpedia.parsers): a hostile body is a 400, not a RecursionError.
JSON_ONLY = [SafeJSONParser]


class BoundedListSerializer(OpenApiSerializerFieldExtension):
    """`Serializer(many=True, min_length=..., max_length=...)` as an array with minItems / maxItems
    (drf-spectacular leaves the bounds of nested list serializers out)."""

    target_class = "rest_framework.serializers.ListSerializer"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if isinstance(schema, dict) and schema.get("type") == "array":
            if self.target.min_length is not None:
                schema["minItems"] = self.target.min_length
            if self.target.max_length is not None:
                schema["maxItems"] = self.target.max_length
        return schema


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    errors = serializers.DictField(required=False, help_text="field errors, when a field is to blame")


def validated(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The request body checked by `serializer_class`; a ValidationError (400) otherwise."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


BAD_REQUEST = error("Invalid input; `message` says which field and why")
UNAUTHORIZED = error("No or invalid API key: set the x-api-key header")
FORBIDDEN = error("Authenticated, but not the owner")
NOT_FOUND = error("Not found, or not visible to the caller")
UNSUPPORTED_MEDIA = error("The body is not JSON (`Content-Type: application/json`)")
TOO_MANY = error("Rate limit exceeded: see the Retry-After header (neuronpedia/ratelimit.py)")


def errors(*, auth: bool = False, owner: bool = False, missing: bool = True,
           body: bool = True) -> dict[int, OpenApiResponse]:
    """The error responses an endpoint documents next to its success response."""
    responses = {400: BAD_REQUEST, 415: UNSUPPORTED_MEDIA} if body else {}
    if auth:
        responses[401] = UNAUTHORIZED
    if owner:
        responses[403] = FORBIDDEN
    if missing:
        responses[404] = NOT_FOUND
    responses[429] = TOO_MANY
    return responses
