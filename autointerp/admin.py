from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from autointerp.models import ProviderKey


class ProviderKeyForm(forms.ModelForm):
    """The stored key is never rendered back; leaving the field empty keeps it."""

    value = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                            help_text="leave empty to keep the stored key")

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
