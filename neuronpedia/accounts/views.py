"""Sign up (username + password) and the API key page (create / rotate / revoke; a key is shown once)."""

from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from neuronpedia.accounts import services
from neuronpedia.accounts.models import ApiKey


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:api-keys")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="neuronpedia.accounts.throttle.ThrottledModelBackend")
        return redirect("accounts:api-keys")
    return render(request, "registration/signup.html", {"form": form})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    """POST creates (or rotates, for an existing name) a key; the raw key is in this response only."""
    raw_key = ""
    created = None
    error = ""
    if request.method == "POST":
        name = (request.POST.get("name") or "default").strip()[:100]
        if not name:
            error = "Give the key a name."
        else:
            try:
                created, raw_key = services.create_api_key(user=request.user, name=name)
            except ValidationError as exc:
                error = exc.messages[0]
    keys = ApiKey.objects.filter(user=request.user).order_by("-created_at")
    return render(request, "accounts/api_keys.html",
                  {"keys": keys, "raw_key": raw_key, "created": created, "error": error})


@login_required
@require_POST
def revoke_key(request: HttpRequest, key_id: int) -> HttpResponse:
    services.revoke_api_key(key=get_object_or_404(ApiKey, pk=key_id, user=request.user))
    return redirect("accounts:api-keys")
