from __future__ import annotations

from django.contrib import admin

from neuronpedia.accounts.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "name", "higher_limits", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at", "higher_limits"]
    list_editable = ["higher_limits"]
    search_fields = ["user__username", "prefix", "name"]
    readonly_fields = ["key_hash", "prefix", "created_at", "last_used_at"]
