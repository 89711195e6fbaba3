"""Template helpers of the browse pages (issue 18): metric cells, dict lookups."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

PERCENT_METRICS = {"frac_dead", "frac_dense"}


def format_metric(key: str, value: float | None) -> str:
    if value is None:
        return "—"
    if key in PERCENT_METRICS:
        return f"{value:.2%}"
    if key == "l0":
        return f"{value:.1f}"
    return f"{value:.3f}"


@register.simple_tag
def metric_cell(metrics: dict[str, float | None], key: str) -> str:
    value = metrics.get(key)
    if value is None:
        return mark_safe('<span class="muted" title="not measured">—</span>')  # noqa: S308 - a constant
    return format_html('<span data-v="{}">{}</span>', repr(value), format_metric(key, value))


@register.filter
def get_item(mapping: dict[str, Any] | None, key: str) -> Any:
    return (mapping or {}).get(key, "")


@register.filter
def big_number(value: float | int | None) -> str:
    """1.2M, 340k, 512 — token counts."""
    if value is None:
        return "—"
    value = float(value)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"
