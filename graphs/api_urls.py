"""/api/graph/* (included from neuronpedia/urls.py ahead of /api's catch-all)."""

from __future__ import annotations

from django.urls import path, re_path

from graphs import api

urlpatterns = [
    re_path(r"^generate/?$", api.generate, name="api-graph-generate"),
    re_path(r"^list/?$", api.list_graphs, name="api-graph-list"),
    re_path(r"^list-owned/?$", api.list_owned, name="api-graph-list-owned"),
    re_path(r"^delete/?$", api.delete, name="api-graph-delete"),
    re_path(r"^upload/?$", api.upload, name="api-graph-upload"),
    re_path(r"^intervene/?$", api.intervene, name="api-graph-intervene"),
    path("<str:model_id>/<str:slug>/data", api.data, name="api-graph-data"),
    path("<str:model_id>/<str:slug>/labels", api.labels, name="api-graph-labels"),
    path("<str:model_id>/<str:slug>", api.detail, name="api-graph"),
]
