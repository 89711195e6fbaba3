from __future__ import annotations

from django.contrib import admin

from features import models as m


@admin.register(m.Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ["id", "display_name", "layers", "dimension", "instruct", "visibility"]
    list_filter = ["visibility", "instruct", "inference_enabled"]
    search_fields = ["id", "display_name", "tlens_id", "hf_id"]


@admin.register(m.SourceRelease)
class SourceReleaseAdmin(admin.ModelAdmin):
    list_display = ["name", "creator_name", "featured", "visibility"]
    list_filter = ["featured", "visibility"]
    search_fields = ["name", "description"]


@admin.register(m.SourceSet)
class SourceSetAdmin(admin.ModelAdmin):
    list_display = ["name", "model", "release", "type", "visibility", "has_dashboards"]
    list_filter = ["model", "visibility", "type"]
    search_fields = ["name", "description"]
    autocomplete_fields = ["release"]


@admin.register(m.Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "model", "source_set", "layer", "hook_name", "num_features",
                    "has_dashboards"]
    list_filter = ["model", "has_dashboards", "inference_enabled"]
    search_fields = ["name", "hook_name", "saelens_release", "saelens_sae_id"]
    list_select_related = ["model", "source_set"]


@admin.register(m.Eval)
class EvalAdmin(admin.ModelAdmin):
    list_display = ["source", "type", "created_at"]
    list_select_related = ["source"]


@admin.register(m.InferenceHost)
class InferenceHostAdmin(admin.ModelAdmin):
    list_display = ["name", "model", "queue", "device", "heartbeat_at"]
    filter_horizontal = ["sources"]


class ActivationInline(admin.TabularInline):
    model = m.Activation
    fields = ["max_value", "max_value_token_index", "bin_min", "bin_max", "bin_contains"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    show_change_link = True
    ordering = ["-max_value"]


@admin.register(m.Feature)
class FeatureAdmin(admin.ModelAdmin):
    list_display = ["__str__", "max_act_approx", "frac_nonzero", "is_dead", "has_vector"]
    list_filter = ["has_vector", "is_dead"]
    search_fields = ["vector_label"]
    raw_id_fields = ["source", "creator"]
    list_select_related = ["source"]
    show_full_result_count = False
    inlines = [ActivationInline]


@admin.register(m.Activation)
class ActivationAdmin(admin.ModelAdmin):
    list_display = ["id", "feature", "max_value", "bin_min", "bin_max"]
    raw_id_fields = ["feature", "creator"]
    list_select_related = ["feature__source"]
    show_full_result_count = False


@admin.register(m.ExplanationType)
class ExplanationTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "display_name", "featured"]


@admin.register(m.ExplanationModel)
class ExplanationModelAdmin(admin.ModelAdmin):
    list_display = ["name", "display_name", "featured"]


@admin.register(m.ExplanationScoreType)
class ExplanationScoreTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "display_name"]


@admin.register(m.ExplanationScoreModel)
class ExplanationScoreModelAdmin(admin.ModelAdmin):
    list_display = ["name", "display_name"]


class ExplanationScoreInline(admin.TabularInline):
    model = m.ExplanationScore
    extra = 0
    fields = ["score_type", "score_model", "status", "value", "error"]


@admin.register(m.Explanation)
class ExplanationAdmin(admin.ModelAdmin):
    list_display = ["description", "feature", "type", "explanation_model", "embedder"]
    list_filter = ["type", "explanation_model", "embedder"]
    search_fields = ["description"]
    raw_id_fields = ["feature", "author", "triggered_by"]
    exclude = ["embedding"]
    show_full_result_count = False
    inlines = [ExplanationScoreInline]


@admin.register(m.ExplanationScore)
class ExplanationScoreAdmin(admin.ModelAdmin):
    list_display = ["explanation", "score_type", "score_model", "status", "value"]
    list_filter = ["status", "score_type"]
    raw_id_fields = ["explanation", "initiated_by"]


class ListItemInline(admin.TabularInline):
    model = m.ListItem
    extra = 0
    raw_id_fields = ["feature", "added_by"]


@admin.register(m.FeatureList)
class FeatureListAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "visibility", "updated_at"]
    search_fields = ["name", "description"]
    inlines = [ListItemInline]


@admin.register(m.ListItem)
class ListItemAdmin(admin.ModelAdmin):
    list_display = ["feature_list", "feature", "added_at"]
    raw_id_fields = ["feature", "feature_list", "added_by"]


# --- Neuronpedia import/export: the import panel and the Source export action are in transfer/admin.py ---


@admin.register(m.ImportedFile)
class ImportedFileAdmin(admin.ModelAdmin):
    list_display = ["path", "kind", "status", "rows_written", "sha256", "updated_at"]
    list_filter = ["status", "kind"]
    search_fields = ["path"]
    raw_id_fields = ["source", "job"]

