"""Staff actions on the job page: cancel, and resume from the checkpoint (per job kind, via the registry)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from neuronpedia.jobs import registry
from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import Job


@staff_member_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(Job, id=job_id)
    jobs.cancel_job(job.id)
    messages.info(request, f"Cancel requested for job #{job.id}.")
    return redirect("jobs:job-detail", job.id)


@staff_member_required
@require_POST
def job_resume(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(Job, id=job_id)
    if _resume(job):
        messages.info(request, f"Job #{job.id} queued again; it resumes from its checkpoint.")
    else:
        messages.warning(request, f"Job #{job.id} cannot be resumed (only failed or cancelled jobs can).")
    return redirect("jobs:job-detail", job.id)


def _resume(job: Job) -> bool:
    try:
        return jobs.resume_job(job.id)
    except registry.UnknownJobKind:
        return False
