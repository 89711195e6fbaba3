from __future__ import annotations

from django.contrib import admin

from steering.models import SteerOutput, SteerOutputFeature


class SteerOutputFeatureInline(admin.TabularInline):
    model = SteerOutputFeature
    extra = 0
    raw_id_fields = ["feature"]


@admin.register(SteerOutput)
class SteerOutputAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "model", "steer_method", "seed", "created_at"]
    list_filter = ["type", "steer_method", "model"]
    search_fields = ["id", "input_text"]
    raw_id_fields = ["connected_default_output", "creator"]
    inlines = [SteerOutputFeatureInline]


@admin.register(SteerOutputFeature)
class SteerOutputFeatureAdmin(admin.ModelAdmin):
    list_display = ["steer_output", "feature", "strength"]
    raw_id_fields = ["steer_output", "feature"]
