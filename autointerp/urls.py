from __future__ import annotations

from django.urls import path

from autointerp import feature_pages, views

app_name = "autointerp"
urlpatterns = [
    path("accounts/llm-keys/", views.provider_keys, name="provider-keys"),
    path("accounts/llm-keys/<int:key_id>/delete/", views.provider_key_delete, name="provider-key-delete"),
    path("explanations/<int:explanation_id>/delete/", views.explanation_delete, name="explanation-delete"),
    path("explanation-types/", views.type_list, name="types"),
    path("explanation-type/<str:name>/", views.explanation_type, name="explanation-type"),
    path("score-type/<str:name>/", views.score_type, name="score-type"),
]

# pages about features, in the `features:` namespace (neuronpedia/urls.py)
feature_urlpatterns = [
    path("search-explanations", feature_pages.explanation_search, name="search-explanations"),
    path("<slug:model_id>/<str:source_name>/<int:index>/autointerp", feature_pages.autointerp_action,
         name="feature-autointerp"),
]
