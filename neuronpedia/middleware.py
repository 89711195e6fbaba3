"""Hostile input stops here: NUL characters in the URL, the query string or a form body answer 400 (JSON
under /api, the site's 400 page elsewhere) before any view, converter or database sees them; PostgreSQL
refuses NUL in text, so they used to surface as 500s from deep inside the views. A DataError that still
escapes a view (a value the database refuses: out of range, NUL inside a JSON document) is the caller's
bad input too, and answers 400 rather than 500."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DataError
from django.http import HttpRequest, HttpResponse

from neuronpedia.errors import error_response

logger = logging.getLogger(__name__)

NUL = "\x00"
NUL_MESSAGE = "Bad request: NUL characters are not allowed in URLs, parameters or form fields"


def has_nul(request: HttpRequest) -> bool:
    if NUL in request.path_info or NUL in request.path:
        return True
    if any(NUL in key or any(NUL in v for v in values) for key, values in request.GET.lists()):
        return True
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        return any(NUL in key or any(NUL in v for v in values) for key, values in request.POST.lists())
    return False


class HostileInputMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if has_nul(request):
            return error_response(request, 400, NUL_MESSAGE)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DataError):
            logger.warning("bad input refused by the database on %s: %s", request.path, exception)
            return error_response(request, 400, "Bad request: a value is out of range or not storable")
        return None
