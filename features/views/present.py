"""Pure presentation helpers for the pages: activation bin groups, token HTML, SVG histograms, UMAP.

Kept free of queries: views pass rows that the selectors already loaded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

CONTEXT_PRESETS = (("stacked", "Stacked ±5", 5), ("snippet", "Snippet ±16", 16), ("full", "Full", 200))


@dataclass
class BinGroup:
    key: str
    label: str
    share: float | None = None  # fraction of all activations in this bin (0..1)
    low: float | None = None
    high: float | None = None
    items: list[Any] = field(default_factory=list)

    @property
    def is_top(self) -> bool:
        return self.key == "top"


def group_activations(activations: Iterable[Any]) -> list[BinGroup]:
    """'Top' (bin_min == -1) first, then interval bins from the highest range down, then examples that
    carry no bin information. Each group keeps the rows' order (max value, descending)."""
    top = BinGroup("top", "Top activations")
    bins: dict[tuple[float, float], BinGroup] = {}
    loose = BinGroup("other", "Other examples")
    for act in activations:
        if act.bin_min is not None and act.bin_min == -1:
            top.items.append(act)
        elif act.bin_min is not None and act.bin_max is not None:
            key = (float(act.bin_min), float(act.bin_max))
            if key not in bins:
                share = act.bin_contains if act.bin_contains is not None and act.bin_contains >= 0 else None
                bins[key] = BinGroup(f"bin-{len(bins)}", f"Interval {key[0]:.3g} – {key[1]:.3g}",
                                     share=share, low=key[0], high=key[1])
            bins[key].items.append(act)
        else:
            loose.items.append(act)
    ordered = sorted(bins.values(), key=lambda g: -(g.high or 0.0))
    for i, group in enumerate(ordered):
        group.key = f"bin-{i}"
    if not bins and not top.items:
        loose.label = "Top activations"
        loose.key = "top"
    return [g for g in (top, *ordered, loose) if g.items]


class _TokenPieces(dict):
    """token -> (its escaped text with line-break markers, the whole span of a zero-valued token). Token
    strings repeat endlessly (a vocabulary), so each is escaped once. Bounded: cleared when full."""

    limit = 1 << 16

    def __missing__(self, tok: str) -> tuple[str, str]:
        if len(self) >= self.limit:
            self.clear()
        text = escape(tok.replace("\n", "↵")) + '</span>' + '<br class="lb">' * tok.count("\n")
        piece = self[tok] = (text, '<span class="tok">' + text)
        return piece


_TOKEN_PIECES = _TokenPieces()


def tokens_html(tokens: Sequence[str], values: Sequence[float], scale: float | None) -> str:
    """Token spans coloured by value / scale, with the value in `title` and `data-v`. Built as a string:
    a template loop over ~13k tokens (100 examples) costs more than the rest of the page."""
    top = scale if scale and scale > 0 else max([v for v in values if v > 0] or [1.0])
    pieces = _TOKEN_PIECES
    parts = []
    for tok, val in zip(tokens, values, strict=False):
        if val == 0:  # most tokens of a sparse feature: the smallest markup (the tooltip shows 0.000)
            parts.append(pieces[tok][1])
            continue
        alpha = val / top
        style = f' style="--a:{min(1.0, alpha):.3f}"' if alpha > 0 else ""
        parts.append(f'<span class="tok hot" data-v="{val:.3f}" title="{val:.3f}"{style}>{pieces[tok][0]}')
    return "".join(parts)


def activations_html(items: Iterable[Any], scale: float | None) -> str:
    """A bin group's example rows: max value, then the coloured tokens (see tokens_html)."""
    return "".join(
        f'<div class="activation" data-max="{act.max_value}" data-max-index="{act.max_value_token_index}">'
        f'<span class="act-max num">{act.max_value:.2f}</span><span class="toks">'
        f"{tokens_html(act.tokens, act.values, scale)}</span></div>" for act in items)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    negative: bool


@dataclass(frozen=True)
class Histogram:
    bars: list[Bar]
    width: int
    height: int
    x_min: str
    x_max: str
    y_max: str


def histogram(values: Sequence[float], heights: Sequence[float], *, width: int = 320,
              height: int = 110) -> Histogram | None:
    """Bars for an inline SVG: `values` are bin positions (x), `heights` their counts (y)."""
    pairs = [(float(v), float(h)) for v, h in zip(values, heights, strict=False)
             if math.isfinite(v) and math.isfinite(h)]
    if not pairs:
        return None
    top = max(h for _, h in pairs) or 1.0
    step = width / len(pairs)
    bars = []
    for i, (value, count) in enumerate(pairs):
        bar_h = (height - 4) * count / top
        bars.append(Bar(x=round(i * step, 2), y=round(height - bar_h, 2), width=round(max(step - 1, 1), 2),
                        height=round(bar_h, 2), label=f"{value:.3g}: {count:g}", negative=value < 0))
    return Histogram(bars=bars, width=width, height=height, x_min=f"{pairs[0][0]:.3g}",
                     x_max=f"{pairs[-1][0]:.3g}", y_max=f"{top:g}")


def histogram_html(values: Sequence[float], heights: Sequence[float], title: str, kind: str) -> str:
    """An inline SVG bar chart (bars with a <title> tooltip, axis ends in the caption), or a note when
    there is no data."""
    hist = histogram(values, heights)
    title = escape(title)
    if hist is None:
        return f'<p class="empty">No {title.lower()} data.</p>'
    bars = "".join(
        f'<rect x="{b.x}" y="{b.y}" width="{b.width}" height="{b.height}" '
        f'class="{"neg" if b.negative else "pos"}"><title>{escape(b.label)}</title></rect>'
        for b in hist.bars)
    return (f'<figure class="hist hist-{escape(kind)}"><svg viewBox="0 0 {hist.width} {hist.height}" '
            f'width="{hist.width}" height="{hist.height}" role="img" aria-label="{title}">{bars}</svg>'
            f"<figcaption><span>{escape(hist.x_min)}</span><span>{title}</span>"
            f"<span>{escape(hist.x_max)}</span></figcaption></figure>")


@dataclass(frozen=True)
class UmapPoint:
    index: int
    x: float
    y: float
    cluster: int
    explanation: str


def umap_points(rows: Iterable[tuple[int, float, float, int | None, str | None]], *,
                size: int = 600) -> list[UmapPoint]:
    """Scale (index, x, y, cluster, explanation) rows into a size×size box with a 10 px margin."""
    rows = list(rows)
    if not rows:
        return []
    xs = [r[1] for r in rows]
    ys = [r[2] for r in rows]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    inner = size - 20
    return [UmapPoint(index=i, x=round(10 + inner * (x - x0) / span_x, 1),
                      y=round(10 + inner * (1 - (y - y0) / span_y), 1),
                      cluster=(c if c is not None else -1), explanation=e or "")
            for i, x, y, c, e in rows]


def cluster_colour(cluster: int) -> str:
    if cluster < 0:
        return "#98a2b3"
    return f"hsl({(cluster * 137) % 360} 60% 48%)"


def score_columns(details: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]], list[tuple[str, Any]]]:
    """Split a score's json_details into (breakdown columns, breakdown rows, scalar facts)."""
    rows = details.get("breakdown") or details.get("examples") or []
    rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    facts = [(k, v) for k, v in details.items()
             if k not in ("breakdown", "examples") and not isinstance(v, dict | list)]
    return columns, rows, facts


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if is_number(value):
        return f"{value:.3f}" if math.isfinite(value) else str(value)
    return escape("" if value is None else str(value))


def score_details_html(details: Any) -> str:
    """A score's json_details as facts (a definition list) and its per-example breakdown (a table). Built
    in Python: a template loop over 6 scores x 30 rows x 6 cells was half of the feature page's time."""
    columns, rows, facts = score_columns(details if isinstance(details, dict) else {})
    parts = []
    if facts:
        parts.append('<dl class="facts">' + "".join(f"<dt>{escape(str(k))}</dt><dd>{_cell(v)}</dd>"
                                                      for k, v in facts) + "</dl>")
    if rows:
        head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{_cell(row.get(c, ''))}</td>" for c in columns) + "</tr>"
                       for row in rows)
        parts.append(f'<table class="grid small"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
    elif not facts:
        parts.append('<p class="empty">No per-example details were stored for this score.</p>')
    return "".join(parts)
