from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET
from django_htmx.http import HTMX_STOP_POLLING

from neuronpedia.jobs.models import Job


@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = Job.objects.all()[:100]
    return render(request, "jobs/job_list.html", {"jobs": jobs})


@require_GET
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(Job, id=job_id)
    return render(request, "jobs/job_detail.html", {"job": job})


@require_GET
def job_status(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(Job, id=job_id)
    status = HTMX_STOP_POLLING if job.is_finished else 200
    return render(request, "jobs/_job_status.html", {"job": job}, status=status)
