"""Pages of autointerp: a user's LLM provider keys, deleting an explanation, and the explanation-type
and score-type catalog pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Avg, Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from autointerp.models import ProviderKey
from autointerp.types import EXPLAINER_TYPES, SCORER_TYPES
from features.models import Explanation, ExplanationScore, ScoreStatus


def can_delete(user: object, explanation: Explanation) -> bool:
    """Staff delete any explanation; a user deletes the ones they wrote or triggered."""
    if not getattr(user, "is_authenticated", False):
        return False
    if getattr(user, "is_staff", False):
        return True
    pk = getattr(user, "pk", None)
    return pk is not None and pk in (explanation.author_id, explanation.triggered_by_id)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def provider_keys(request: HttpRequest) -> HttpResponse:
    """Add or replace (per provider) an LLM key. The key is encrypted at rest and never shown again:
    the page lists only its last four characters."""
    error = ""
    saved = ""
    if request.method == "POST":
        provider = request.POST.get("provider", "")
        value = (request.POST.get("value") or "").strip()
        base_url = (request.POST.get("base_url") or "").strip()
        if provider not in ProviderKey.Provider.values:
            error = f"Unknown provider {provider!r}."
        elif len(value) < 8 or len(value) > 500:
            error = "Paste the whole key (8 to 500 characters)."
        elif provider == ProviderKey.Provider.CUSTOM and not base_url.startswith(("http://", "https://")):
            error = "An OpenAI-compatible endpoint needs its base URL (http(s)://…/v1)."
        else:
            key = ProviderKey.objects.filter(user=request.user, provider=provider).first() or ProviderKey(
                user=request.user, provider=provider)
            key.value, key.base_url = value, base_url[:200]
            key.save()
            saved = f"Saved your {key.get_provider_display()} key {key.masked}."
    keys = ProviderKey.objects.filter(user=request.user).order_by("provider")
    return render(request, "autointerp/provider_keys.html", {
        "keys": keys, "providers": ProviderKey.Provider.choices, "error": error, "saved": saved},
        status=400 if error else 200)


@login_required
@require_POST
def provider_key_delete(request: HttpRequest, key_id: int) -> HttpResponse:
    get_object_or_404(ProviderKey, pk=key_id, user=request.user).delete()
    return redirect("autointerp:provider-keys")


@require_POST
def explanation_delete(request: HttpRequest, explanation_id: int) -> HttpResponse:
    explanation = Explanation.objects.select_related("feature__source").filter(pk=explanation_id).first()
    if explanation is None:
        raise Http404(f"explanation {explanation_id} not found")
    if not can_delete(request.user, explanation):
        return HttpResponse("Only its author or an admin can delete this explanation.", status=403)
    url = explanation.feature.get_absolute_url()
    explanation.delete()
    return redirect(url)


def _stats(kind: str) -> dict[str, dict[str, object]]:
    if kind == "explanation":
        rows = Explanation.objects.values("type_id").annotate(n=Count("id"), mean=Avg("score"))
        return {r["type_id"]: r for r in rows if r["type_id"]}
    rows = ExplanationScore.objects.values("score_type_id").annotate(
        n=Count("id", filter=Q(status=ScoreStatus.DONE)),
        mean=Avg("value", filter=Q(status=ScoreStatus.DONE)),
        failed=Count("id", filter=Q(status=ScoreStatus.FAILED)))
    return {r["score_type_id"]: r for r in rows}


@require_GET
def type_list(request: HttpRequest) -> HttpResponse:
    return render(request, "autointerp/types.html", {
        "explainers": [(t, _stats("explanation").get(t.name, {})) for t in EXPLAINER_TYPES.values()],
        "scorers": [(t, _stats("score").get(t.name, {})) for t in SCORER_TYPES.values()]})


@require_GET
def explanation_type(request: HttpRequest, name: str) -> HttpResponse:
    spec = EXPLAINER_TYPES.get(name)
    if spec is None:
        raise Http404(f"explanation type {name} not found")
    recent = Explanation.objects.filter(type_id=name).select_related("feature__source").defer("embedding") \
        .order_by("-id")[:20]
    return render(request, "autointerp/type_detail.html", {
        "spec": spec, "kind": "Explanation type", "stats": _stats("explanation").get(name, {}),
        "recent": recent})


@require_GET
def score_type(request: HttpRequest, name: str) -> HttpResponse:
    spec = SCORER_TYPES.get(name)
    if spec is None:
        raise Http404(f"score type {name} not found")
    return render(request, "autointerp/type_detail.html", {
        "spec": spec, "kind": "Score type", "stats": _stats("score").get(name, {}), "recent": []})
