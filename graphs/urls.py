from __future__ import annotations

from django.urls import path

from graphs import views

app_name = "graphs"
urlpatterns = [
    path("graph", views.graph_index, name="index"),
    path("<slug:model_id>/graph", views.graph_page, name="graph"),
    path("<slug:model_id>/graph/status", views.graph_status, name="status"),
    path("<slug:model_id>/graph/generate", views.graph_generate, name="generate"),
    path("<slug:model_id>/graph/upload", views.graph_upload, name="upload"),
    path("<slug:model_id>/graph/delete", views.graph_delete, name="delete"),
]
