"""The live-inference pages, in the `features:` namespace (neuronpedia/urls.py)."""

from __future__ import annotations

from django.urls import path

from inference import views

feature_urlpatterns = [
    path("search", views.inference_search, name="search"),
    path("search-topk", views.topk_search, name="search-topk"),
    path("<slug:model_id>/<str:source_name>/<int:index>/panel/live", views.live_panel, name="feature-live"),
    path("<slug:model_id>/<str:source_name>/<int:index>/panel/similar", views.similar_live,
         name="feature-similar-live"),
]
