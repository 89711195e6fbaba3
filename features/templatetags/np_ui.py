"""Template helpers for the UI: coloured tokens, inline SVG histograms, percentages, score details."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from features.views import present

register = template.Library()


@register.filter
def tokens(activation: Any, scale: float | None = None) -> SafeString:
    """`{{ act|tokens:feature.max_act_approx }}`: the example's tokens as coloured spans."""
    return mark_safe(present.tokens_html(activation.tokens, activation.values, scale))  # noqa: S308


@register.inclusion_tag("_partials/histogram.html")
def histogram_svg(values: Any, heights: Any, title: str, kind: str = "density") -> dict[str, Any]:
    return {"hist": present.histogram(values or [], heights or []), "title": title, "kind": kind}


@register.filter
def pct(fraction: float | None, digits: int = 3) -> str:
    """0.00123 -> '0.123%' (significant digits, so tiny densities stay readable)."""
    if fraction is None:
        return "—"
    return f"{100 * float(fraction):.{int(digits)}g}%"


@register.filter
def cluster_colour(cluster: int) -> str:
    return present.cluster_colour(cluster)


@register.filter
def score_table(details: Any) -> dict[str, Any]:
    columns, rows, facts = present.score_columns(details if isinstance(details, dict) else {})
    return {"columns": columns, "rows": rows, "facts": facts}


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    if isinstance(mapping, dict):
        return mapping.get(key, "")
    return ""


@register.filter
def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
