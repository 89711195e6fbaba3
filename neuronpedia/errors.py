"""One error path for the whole site: under /api every error is JSON `{"message"}`; everywhere else it is
the site's own page (templates/400.html, 403.html, 404.html, 500.html). Never a traceback: DEBUG is only
on in an explicit development mode (DJANGO_DEBUG=1)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

logger = logging.getLogger(__name__)

TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 500: "Server error"}


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def error_response(request: HttpRequest, status: int, message: str = "") -> HttpResponse:
    """JSON under /api, the branded page elsewhere. The 500 page renders without the request's context
    processors (they may be what failed)."""
    message = message or TITLES.get(status, "Error")
    if is_api(request):
        return JsonResponse({"message": message}, status=status)
    template = f"{status}.html" if status in TITLES else "400.html"
    context = {"message": message, "status": status, "title": TITLES.get(status, "Error"),
               "SITE_NAME": settings.SITE_NAME, "path": request.path}
    try:
        body = loader.render_to_string(template, context, request=None if status >= 500 else request)
    except Exception:  # the error page itself must never fail
        logger.exception("rendering the %s page failed", status)
        body = f"<!doctype html><title>{status}</title><h1>{context['title']}</h1>"
    return HttpResponse(body, status=status, content_type="text/html; charset=utf-8")


def _message(exception: Exception | None, default: str) -> str:
    text = str(exception) if exception is not None else ""
    # Django's resolver puts a dict (the tried patterns) into Resolver404: not for visitors' eyes
    if not text or text.startswith("{"):
        return default
    return text


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 400, "Bad request")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 403, _message(exception, "You do not have permission to see this."))


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 404, _message(exception, f"There is nothing at {request.path}."))


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(request, 500, "Something went wrong on our side. The error was logged.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return error_response(request, 403, "The form expired or came from another site (CSRF check failed). "
                                         "Reload the page and try again.")
