from __future__ import annotations

from django.urls import path

from steering import views

app_name = "steering"
urlpatterns = [
    path("steer", views.steer_page, name="steer"),
    path("steer/<str:share_id>", views.steer_share, name="steer-share"),
    path("embed/steer/<str:share_id>", views.steer_embed, name="steer-embed"),
]
