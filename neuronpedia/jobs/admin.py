from __future__ import annotations

from django.contrib import admin

from neuronpedia.jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "title", "status", "done", "total", "heartbeat_at", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["title", "source_ref", "model_id_ref"]
    readonly_fields = ["created_at", "started_at", "heartbeat_at", "finished_at", "generation"]
