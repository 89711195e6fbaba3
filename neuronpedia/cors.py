"""CORS for /api: Neuronpedia serves its API to any origin (`Access-Control-Allow-Origin: *`), so
notebooks served elsewhere and other sites' embeds can call it from a browser.

`NP_CORS_ALLOW_ORIGINS` is "*" (the default), a comma-separated list of exact origins, or empty (off).
Preflight requests (OPTIONS with `Access-Control-Request-Method`) are answered here, before rate limits
and authentication, with the methods and headers the API uses. Credentials are never allowed: the API
authenticates with the `x-api-key` header, and a browser sends no cookies on a credential-less CORS call.
Pages outside /api are untouched (same-origin only).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "accept, content-type, x-api-key, authorization"
EXPOSE_HEADERS = "x-limit-remaining, retry-after"
MAX_AGE = "86400"


def allowed_origin(origin: str) -> str | None:
    """The value for Access-Control-Allow-Origin, or None when the origin is not allowed."""
    allowed: list[str] = settings.NP_CORS_ALLOW_ORIGINS
    if not origin or not allowed:
        return None
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


class ApiCorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api"):
            return self.get_response(request)
        origin = allowed_origin(request.headers.get("Origin", ""))
        preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        if preflight and origin:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response["Access-Control-Max-Age"] = MAX_AGE
        else:
            response = self.get_response(request)
        if origin:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            if origin != "*":
                response["Vary"] = ", ".join(filter(None, [response.get("Vary", ""), "Origin"]))
        return response
