"""Admin actions that start worker jobs: "Generate dashboards" on the catalog's Source admin and "Train demo
transcoders" on the job list (both jobs run on the model's inference worker)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_POST

from features.admin import SourceAdmin
from features.models import Source
from inference.dashboards import start_dashboard_job
from inference.demo import DEMO_MODEL_ID
from inference.transcoder_training import ensure_training_job, training_params
from neuronpedia.jobs.admin import JobAdmin
from neuronpedia.jobs.models import Job


@admin.action(description="Generate dashboards")
def generate_dashboards(modeladmin: admin.ModelAdmin, request: Any, queryset: Any) -> Any:  # type: ignore[type-arg]
    """One job per selected source (default parameters); redirects to the (last) job's page."""
    jobs = [start_dashboard_job(source=s, requested_by=request.user) for s in queryset]
    if not jobs:
        return None
    modeladmin.message_user(request, f"queued {len(jobs)} dashboard job(s)")
    return redirect("jobs:job-detail", job_id=jobs[-1].id)


admin.site.unregister(Source)


@admin.register(Source)
class SourceWithDashboardsAdmin(SourceAdmin):
    actions = [generate_dashboards, *SourceAdmin.actions]  # (+ the catalog's export action)


admin.site.unregister(Job)


@admin.register(Job)
class JobWithTrainingAdmin(JobAdmin):
    change_list_template = "admin/jobs/job/change_list.html"  # adds the "Train demo transcoders" button

    def get_urls(self) -> list:  # type: ignore[type-arg]
        extra = [path("train-transcoders/", self.admin_site.admin_view(self.train_transcoders_view),
                      name="jobs_job_train_transcoders")]
        return extra + super().get_urls()

    def train_transcoders_view(self, request: HttpRequest) -> HttpResponse:
        """The "Train demo transcoders" button: queue (or resume, or show) the demo set's training job."""
        return _train_transcoders(request)


@require_POST
def _train_transcoders(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        return redirect("admin:login")
    job, what = ensure_training_job(model_id=DEMO_MODEL_ID, params=training_params(),
                                    requested_by=request.user)
    messages.info(request, f"Transcoder training job #{job.id}: {what}.")
    return redirect("jobs:job-detail", job.id)
