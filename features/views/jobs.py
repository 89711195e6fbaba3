"""Staff actions on the job page: cancel, and resume from the checkpoint (per job kind)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import Job, JobKind


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
    if job.kind in (JobKind.IMPORT_SOURCE, JobKind.EXPORT_SOURCE):
        from features.services_import import resume_job  # noqa: PLC0415

        return resume_job(job_id=job.id)
    if job.kind == JobKind.GENERATE_DASHBOARDS:
        from features.dashboards import resume_dashboard_job  # noqa: PLC0415

        return resume_dashboard_job(job.id)
    if job.kind == JobKind.AUTOINTERP_BATCH:
        from django.db import transaction  # noqa: PLC0415

        from autointerp.tasks import autointerp_batch_task  # noqa: PLC0415

        with transaction.atomic():
            if not jobs.requeue_job(job.id):
                return False
            transaction.on_commit(lambda: autointerp_batch_task.delay(job.id))
        return True
    return False
