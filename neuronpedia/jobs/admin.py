from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_POST

from neuronpedia.jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "title", "status", "done", "total", "heartbeat_at", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["title", "source_ref", "model_id_ref"]
    readonly_fields = ["created_at", "started_at", "heartbeat_at", "finished_at", "generation"]
    change_list_template = "admin/jobs/job/change_list.html"

    def get_urls(self) -> list:  # type: ignore[type-arg]
        extra = [path("train-transcoders/", self.admin_site.admin_view(self.train_transcoders_view),
                      name="jobs_job_train_transcoders")]
        return extra + super().get_urls()

    def train_transcoders_view(self, request: HttpRequest) -> HttpResponse:
        """The "Train demo transcoders" button: queue (or resume, or show) the demo set's training job."""
        return _train_transcoders(request)


@require_POST
def _train_transcoders(request: HttpRequest) -> HttpResponse:
    from features.demo import DEMO_MODEL_ID  # noqa: PLC0415
    from features.transcoder_training import ensure_training_job, training_params  # noqa: PLC0415

    if not request.user.is_staff:
        return redirect("admin:login")
    job, what = ensure_training_job(model_id=DEMO_MODEL_ID, params=training_params(),
                                    requested_by=request.user)
    messages.info(request, f"Transcoder training job #{job.id}: {what}.")
    return redirect("jobs:job-detail", job.id)
