"""Admin panel for imports from Neuronpedia's export layout: models -> source sets -> sources available at
NP_IMPORT_BASE (or a base typed in the page), Import / Re-sync per source and per set, config sync, and
each job's live progress (htmx polling of /jobs/<id>/status/), cancel, resume and verification result.

Reached from the admin index as "Neuronpedia imports (panel)" (a proxy model of the features app with no
table, so its URLs stay /admin/features/importpanel/...). The Source admin gains an Export action here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from features import admin as catalog_admin
from features.models import ImportPanel
from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import Job, JobKind
from transfer import services
from transfer.importer.catalog import list_models, list_sets
from transfer.importer.errors import ImportSourceError
from transfer.importer.storage import open_store

PANEL = "admin:features_importpanel_changelist"


@admin.register(ImportPanel)
class ImportPanelAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("start/", wrap(self.start_view), name="features_import_start"),
            path("job/<int:job_id>/", wrap(self.job_view), name="features_import_job"),
            path("job/<int:job_id>/cancel/", wrap(self.cancel_view), name="features_import_cancel"),
            path("job/<int:job_id>/resume/", wrap(self.resume_view), name="features_import_resume"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.model._meta,
                "title": "Import from Neuronpedia exports", **extra}

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        base = request.GET.get("base") or services.import_base()
        model_id = request.GET.get("model", "")
        models: list[str] = []
        sets: list = []
        error = ""
        try:
            store = open_store(base)
            models = list_models(store)
            if model_id:
                sets = list_sets(store, model_id)
        except ImportSourceError as exc:
            error = str(exc)
        recent = Job.objects.filter(kind__in=[JobKind.IMPORT_SOURCE, JobKind.EXPORT_SOURCE])[:10]
        return render(request, "admin/features/import_panel.html", self._context(
            request, base=base, models=models, model_id=model_id, sets=sets, error=error, recent=recent))

    def start_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or not self.has_view_permission(request):
            return HttpResponse(status=405 if request.method != "POST" else 403)
        return _start(request)

    def job_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = get_object_or_404(Job, id=job_id)
        return render(request, "admin/features/import_job.html", self._context(request, job=job))

    def cancel_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        return _job_action(request, job_id, cancel=True)

    def resume_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        return _job_action(request, job_id, cancel=False)


def _start(request: HttpRequest) -> HttpResponse:
    data = request.POST
    base = data.get("base") or services.import_base()
    try:
        if data.get("what") == "config":
            job = services.start_config_import(base=base, requested_by=request.user)
        elif data.get("what") == "set":
            job = services.start_set_import(model_id=data["model"], set_name=data["set"], base=base,
                                                   requested_by=request.user)
        else:
            job = services.start_import(model_id=data["model"], sources=[data["source"]], base=base,
                                               force=data.get("force") == "1", requested_by=request.user)
    except (ImportSourceError, ValueError, KeyError) as exc:
        messages.error(request, f"Cannot start the import: {exc}")
        return HttpResponseRedirect(reverse(PANEL))
    return HttpResponseRedirect(reverse("admin:features_import_job", args=[job.id]))


@require_POST
def _job_action(request: HttpRequest, job_id: int, *, cancel: bool) -> HttpResponse:
    if not request.user.is_superuser:
        return HttpResponse(status=403)
    if cancel:
        jobs.cancel_job(job_id)
        messages.info(request, f"Cancel requested for job #{job_id}.")
    elif services.resume_job(job_id=job_id):
        messages.info(request, f"Job #{job_id} queued again; it resumes from its file checkpoints.")
    return HttpResponseRedirect(reverse("admin:features_import_job", args=[job_id]))


@admin.action(description="Export in Neuronpedia's format (to NP_DATA_DIR/exports)")
def export_sources(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> None:
    for source in queryset:
        job = services.start_export(source=source, requested_by=request.user)
        messages.info(request, f"Export of {source} queued as job #{job.id}.")


# On the catalog's Source admin class itself, not a subclass: inference/admin.py re-registers Source with a
# subclass of it that keeps its actions (transfer comes before inference in INSTALLED_APPS, so before).
catalog_admin.SourceAdmin.actions = [*catalog_admin.SourceAdmin.actions, export_sources]
