"""Who may call what: anonymous reads where Neuronpedia allows them, writes need an API key, and
private things are visible to their owner only (strangers get 404, so ids do not leak)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import exceptions, permissions
from rest_framework.request import Request

from features import selectors
from features.models import FeatureList, Model, Source, SourceSet, Visibility

API_KEY_HINT = ("Authentication required: set the x-api-key header to an API key from your account "
                "page (or `manage.py create_api_key <username>`).")


class HasApiKey(permissions.BasePermission):
    """An authenticated user; otherwise 401 with a hint to set `x-api-key`."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.user and request.user.is_authenticated:
            return True
        raise exceptions.NotAuthenticated(API_KEY_HINT)


def _staff(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_staff)


def _is(user: Any, owner_id: int | None) -> bool:
    return bool(user and user.is_authenticated and owner_id is not None and user.pk == owner_id)


def can_view_model(user: Any, model: Model) -> bool:
    return model.visibility != Visibility.PRIVATE or _is(user, model.creator_id) or _staff(user)


def _set_visible(user: Any, source_set: SourceSet) -> bool:
    return source_set.visibility != Visibility.PRIVATE or _is(user, source_set.creator_id) or _staff(user)


def can_view_source_set(user: Any, source_set: SourceSet) -> bool:
    """PRIVATE models / source sets / sources are visible to their creator (and staff) only."""
    return can_view_model(user, source_set.model) and _set_visible(user, source_set)


def can_view_source(user: Any, source: Source) -> bool:
    if not (can_view_model(user, source.model) and _set_visible(user, source.source_set)):
        return False
    return source.visibility != Visibility.PRIVATE or _is(user, source.source_set.creator_id) or _staff(user)


def require_visible(user: Any, source: Source) -> Source:
    """`source` if `user` may see it; Http404 (as if absent) otherwise: pages of PRIVATE sources (and an
    import's hidden `.staging` copy) answer like the API does."""
    if not can_view_source(user, source):
        raise Http404(f"source {source.model_id}/{source.name} not found")
    return source


def owns_source(user: Any, source: Source) -> bool:
    """Uploads go only into a source set the user created."""
    return _is(user, source.source_set.creator_id)


def can_view_list(user: Any, feature_list: FeatureList) -> bool:
    return feature_list.visibility != Visibility.PRIVATE or _is(user, feature_list.owner_id)


def owns_list(user: Any, feature_list: FeatureList) -> bool:
    return _is(user, feature_list.owner_id)


def visible_source(user: Any, model_id: str, source_name: str) -> Source:
    """The source `model_id/source_name` if `user` may see it; Http404 (as if absent) otherwise."""
    try:
        source = selectors.get_source(model_id, source_name)
    except Http404:
        raise Http404(f"source {model_id}/{source_name} not found") from None
    if not can_view_source(user, source):
        raise Http404(f"source {model_id}/{source_name} not found")
    return source
