"""Issue 15: one error path. Under /api every error is JSON `{"message"}`; elsewhere it is the site's own
page (with its header), never a traceback; DEBUG is only on in an explicit development mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.test import Client
from django.urls import include, path

ROOT = Path(__file__).resolve().parents[2]


def _boom(request: Any) -> Any:
    raise RuntimeError("secret internals: DATABASE_URL=postgres://u:p@h/db")


def _forbidden(request: Any) -> Any:
    raise PermissionDenied("staff only")


def _suspicious(request: Any) -> Any:
    raise SuspiciousOperation("odd")


urlpatterns = [
    path("api/boom", _boom), path("boom", _boom), path("forbidden", _forbidden),
    path("api/forbidden", _forbidden), path("suspicious", _suspicious), path("api/suspicious", _suspicious),
    path("", include("neuronpedia.urls")),
]
handler400 = "neuronpedia.errors.bad_request"
handler403 = "neuronpedia.errors.permission_denied"
handler404 = "neuronpedia.errors.page_not_found"
handler500 = "neuronpedia.errors.server_error"


def _client() -> Client:
    return Client(raise_request_exception=False)


@pytest.mark.urls("tests.neuronpedia.test_errors")
@pytest.mark.django_db
@pytest.mark.parametrize(("url", "status"), [("/api/boom", 500), ("/api/forbidden", 403),
                                             ("/api/suspicious", 400)])
def test_api_errors_are_json(url: str, status: int) -> None:
    response = _client().get(url)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["message"]
    assert b"secret internals" not in response.content


@pytest.mark.urls("tests.neuronpedia.test_errors")
@pytest.mark.django_db
@pytest.mark.parametrize(("url", "status", "text"), [
    ("/boom", 500, b"Something went wrong"), ("/forbidden", 403, b"staff only"),
    ("/suspicious", 400, b"Bad request"), ("/no-such-model/", 404, b"Not found"),
])
def test_page_errors_are_the_sites_branded_pages(url: str, status: int, text: bytes) -> None:
    response = _client().get(url)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert b'class="topbar"' in response.content  # the site's header, not Django's bare page
    assert text in response.content
    assert b"Traceback" not in response.content
    assert b"secret internals" not in response.content


@pytest.mark.django_db
def test_unknown_api_path_is_a_json_404() -> None:
    response = _client().get("/api/nothing/here")
    assert response.status_code == 404
    assert response.json()["message"].startswith("Not found")


@pytest.mark.django_db
def test_a_csrf_failure_is_the_branded_403(alice: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/lists/new", {"name": "x"})
    assert response.status_code == 403
    assert b'class="topbar"' in response.content
    assert b"CSRF" in response.content


def _debug_of(settings_module: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"DJANGO_DEBUG", "NP_DEV"}}
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={**clean, "DJANGO_SETTINGS_MODULE": settings_module, **env}, check=True)
    return result.stdout.strip()


def test_debug_is_off_unless_asked_for() -> None:
    assert _debug_of("neuronpedia.settings.local") == "False"
    assert _debug_of("neuronpedia.settings.local", DJANGO_DEBUG="1") == "True"


def test_bin_np_serves_without_debug_unless_np_dev() -> None:
    """`bin/np up` starts the web server from the environment bin/np exports: DJANGO_DEBUG=false unless
    NP_DEV=1, even when the caller's shell has DJANGO_DEBUG=true."""
    script = (ROOT / "bin" / "np").read_text()
    prelude = script[: script.index("step() {")]
    for np_dev, want in (("", "false"), ("1", "true")):
        result = subprocess.run(["bash", "-c", prelude.replace('cd "$ROOT"', "") + 'echo "$DJANGO_DEBUG"'],
                                capture_output=True, text=True, check=True,
                                env={"PATH": os.environ["PATH"], "DJANGO_DEBUG": "true", "NP_DEV": np_dev})
        assert result.stdout.strip() == want
