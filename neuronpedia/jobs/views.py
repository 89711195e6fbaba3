"""Job pages. A job is visible to the user who requested it and to staff; anonymous visitors are sent to
sign in, and others get a 404 (not a 403: a job's existence is not public). Parameters, checkpoints and
server paths (in results and errors) are shown to staff only. The polling fragment of a system job (one
nobody requested, e.g. the demo's training shown on the home page) shows anyone its progress, nothing
else."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django_htmx.http import HTMX_STOP_POLLING

from neuronpedia.jobs.models import Job


def visible_jobs(user: Any) -> QuerySet[Job]:
    jobs = Job.objects.select_related("requested_by")
    return jobs if user.is_staff else jobs.filter(requested_by=user)


def _visible_job(request: HttpRequest, job_id: int) -> Job:
    job = visible_jobs(request.user).filter(id=job_id).first()
    if job is None:
        raise Http404(f"job {job_id} not found")
    return job


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = visible_jobs(request.user)[:100]
    return render(request, "jobs/job_list.html", {"jobs": jobs})


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _visible_job(request, job_id)
    return render(request, "jobs/job_detail.html", {"job": job})


@require_GET
def job_status(request: HttpRequest, job_id: int) -> HttpResponse:
    progress_only = False
    job = visible_jobs(request.user).filter(id=job_id).first() if request.user.is_authenticated else None
    if job is None:
        job = Job.objects.filter(id=job_id, requested_by=None).first()
        progress_only = True
    if job is None:
        raise Http404(f"job {job_id} not found")
    status = HTMX_STOP_POLLING if job.is_finished else 200
    context = {"job": job, "progress_only": progress_only, "with_actions": request.GET.get("actions") == "1"}
    return render(request, "jobs/_job_status.html", context, status=status)
