from __future__ import annotations

from django.urls import path

from neuronpedia.jobs import actions, views

app_name = "jobs"
urlpatterns = [
    path("", views.job_list, name="job-list"),
    path("<int:job_id>/", views.job_detail, name="job-detail"),
    path("<int:job_id>/status/", views.job_status, name="job-status"),
]

# staff actions on the job page, in the `features:` namespace where they were first published
# (neuronpedia/urls.py)
feature_urlpatterns = [
    path("jobs/<int:job_id>/cancel/", actions.job_cancel, name="job-cancel"),
    path("jobs/<int:job_id>/resume/", actions.job_resume, name="job-resume"),
]
