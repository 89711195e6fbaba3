from __future__ import annotations

from django.urls import path

from neuronpedia.accounts import views

app_name = "accounts"
urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("api-keys/", views.api_keys, name="api-keys"),
    path("api-keys/<int:key_id>/revoke/", views.revoke_key, name="api-key-revoke"),
]
