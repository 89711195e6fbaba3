"""Every API error is JSON with a `message`, never an HTML page or a bare 500."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        inner = _first_message(value)
        return inner if key in {"detail", "non_field_errors"} else f"{key}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.messages)
    if isinstance(exc, SuspiciousOperation):  # e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response({"message": f"Bad request: {exc}"}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        return Response({"message": str(exc) or "not found"}, status=status.HTTP_404_NOT_FOUND)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    response.data = {"message": _first_message(detail)}
    if isinstance(detail, dict) and not set(detail) <= {"detail"}:
        response.data["errors"] = detail
    return response


def not_found(request: HttpRequest, rest: str = "") -> Any:
    """Any other path under /api: a JSON 404 (not the HTML page), so that API clients, and a path
    parameter that is not an id, always get `{"message"}`. Keeps APPEND_SLASH working for the pages that
    want a slash (/api/docs -> /api/docs/)."""
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not not_found:
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return JsonResponse({"message": f"Not found: {request.path}"}, status=status.HTTP_404_NOT_FOUND)
