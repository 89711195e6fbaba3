from __future__ import annotations

from django.contrib import admin

from neuronpedia.accounts.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["user__username", "prefix", "name"]
    readonly_fields = ["key_hash", "prefix", "created_at", "last_used_at"]
