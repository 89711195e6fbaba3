from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path

from autointerp.models import ProviderKey
from features.models import Source


class ProviderKeyForm(forms.ModelForm):
    """The stored key is never rendered back; leaving the field empty keeps it."""

    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="leave empty to keep the stored key",
    )

    class Meta:
        model = ProviderKey
        fields = ["user", "provider", "base_url", "value"]

    def clean_value(self) -> str:
        value = self.cleaned_data["value"]
        if not value and not (self.instance and self.instance.pk):
            raise forms.ValidationError("a key is required")
        return value or self.instance.value


@admin.register(ProviderKey)
class ProviderKeyAdmin(admin.ModelAdmin):
    form = ProviderKeyForm
    list_display = ["provider", "user", "masked", "base_url", "created_at"]
    list_filter = ["provider"]

    def get_readonly_fields(self, request: Any, obj: Any = None) -> list[str]:
        return ["created_at"]

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.batch_view)
        return [path("batch/", view, name="autointerp_batch"), *super().get_urls()]

    def batch_view(self, request: HttpRequest) -> HttpResponse:
        """Form -> start_autointerp_batch -> the job page."""
        from autointerp.batch import BatchParams, start_autointerp_batch  # noqa: PLC0415

        form = BatchForm(request.POST or None, initial={"source": request.GET.get("source")})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                params = BatchParams(
                    action=data["action"],
                    source_id=data["source"].pk,
                    explainer_type=data["explainer_type"],
                    model=data["model"],
                    score_types=tuple(data["score_types"]),
                    concurrency=data["concurrency"],
                    rpm=data["rpm"] or 0,
                    limit=data["limit"],
                )
                job = start_autointerp_batch(params=params, requested_by=request.user)
            except ValueError as exc:  # bad parameters, or no LLM provider configured
                form.add_error(None, str(exc))
            else:
                return HttpResponseRedirect(f"/jobs/{job.pk}/")
        context = {**self.admin_site.each_context(request), "form": form, "title": "Autointerp batch"}
        return TemplateResponse(request, "autointerp/admin_batch.html", context)


class BatchForm(forms.Form):
    source = forms.ModelChoiceField(
        queryset=Source.objects.select_related("model").order_by("model_id", "name")
    )
    action = forms.ChoiceField(choices=[("explain", "explain"), ("score", "score")])
    explainer_type = forms.ChoiceField(
        choices=[
            ("np_max-act-logits", "np_max-act-logits (max-act + logits)"),
            ("eleuther_acts_top20", "eleuther_acts_top20 (delphi default)"),
        ]
    )
    model = forms.CharField(initial="smollm2-135m-instruct")
    score_types = forms.MultipleChoiceField(
        required=False, choices=[(t, t) for t in ("eleuther_recall", "eleuther_fuzz", "eleuther_embedding")]
    )
    concurrency = forms.IntegerField(min_value=1, max_value=256, initial=4)
    rpm = forms.IntegerField(min_value=0, required=False, help_text="requests per minute; empty = no limit")
    limit = forms.IntegerField(min_value=1, required=False, help_text="only the first N features")
