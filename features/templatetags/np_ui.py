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


@register.simple_tag
def activation_rows(items: Any, scale: float | None) -> SafeString:
    """`{% activation_rows group.items scale %}`: a bin group's examples with coloured tokens."""
    return mark_safe(present.activations_html(items, scale))  # noqa: S308


@register.inclusion_tag("features/_evals_table.html")
def eval_table(output: Any, eval_type: str = "core") -> dict[str, Any]:
    """`{% eval_table job.result.evals %}`: one eval output (SAEBench layout or flat) as the table."""
    from types import SimpleNamespace  # noqa: PLC0415

    return {"eval_groups": present.eval_groups([SimpleNamespace(type=eval_type, output=output)]),
            "table_id": "job"}


@register.simple_tag
def histogram_svg(values: Any, heights: Any, title: str, kind: str = "density") -> SafeString:
    return mark_safe(present.histogram_html(values or [], heights or [], title, kind))  # noqa: S308


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
def score_details(details: Any) -> SafeString:
    """`{{ score.json_details|score_details }}`: facts and the per-example breakdown table."""
    return mark_safe(present.score_details_html(details))  # noqa: S308


register.filter("is_number", present.is_number)
