from __future__ import annotations

from django.urls import path

from neuronpedia.jobs import views

app_name = "jobs"
urlpatterns = [
    path("", views.job_list, name="job-list"),
    path("<int:job_id>/", views.job_detail, name="job-detail"),
    path("<int:job_id>/status/", views.job_status, name="job-status"),
]
