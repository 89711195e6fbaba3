from __future__ import annotations

from django.contrib import admin

from graphs.models import Graph


@admin.register(Graph)
class GraphAdmin(admin.ModelAdmin):
    list_display = ("slug", "model", "scan", "status", "visibility", "origin", "n_nodes", "n_links",
                    "creator", "created_at")
    list_filter = ("status", "visibility", "origin", "model")
    search_fields = ("slug", "prompt")
    exclude = ("nodes", "links_z")
    readonly_fields = ("job", "cache_key", "params", "metadata", "qparams", "prompt_tokens")
    raw_id_fields = ("creator",)
