from __future__ import annotations

from django.urls import path

from features import views

app_name = "features"
urlpatterns = [
    path("", views.home, name="home"),
    path("<slug:model_id>/", views.model_page, name="model"),
    path("<slug:model_id>/<str:source_name>/", views.source_page, name="source"),
    path("<slug:model_id>/<str:source_name>/<int:index>", views.feature_page, name="feature"),
]
