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


def visible_token(tok: str) -> str:
    """A token as the pages show it: line breaks as ↵, and a token of only spaces or tabs made visible
    (· per space, → per tab) so blank tokens in results are not invisible."""
    if tok and not tok.strip(" \t"):
        return tok.replace(" ", "·").replace("\t", "→")
    return tok.replace("\n", "↵")


class _TokenPieces(dict):
    """token -> (its escaped text with line-break markers, the whole span of a zero-valued token). Token
    strings repeat endlessly (a vocabulary), so each is escaped once. Bounded: cleared when full."""

    limit = 1 << 16

    def __missing__(self, tok: str) -> tuple[str, str]:
        if len(self) >= self.limit:
            self.clear()
        text = escape(visible_token(tok)) + '</span>' + '<br class="lb">' * tok.count("\n")
        cls = "tok ws" if tok and not tok.strip() else "tok"
        piece = self[tok] = (text, f'<span class="{cls}">' + text)
        return piece


_TOKEN_PIECES = _TokenPieces()


def tokens_html(tokens: Sequence[str], values: Sequence[float], scale: float | None) -> str:
    """Token spans coloured by value / scale, with the value in `title` and `data-v`. Built as a string:
    a template loop over ~13k tokens (100 examples) costs more than the rest of the page. Active tokens
    are keyboard-focusable (their value shows on focus) and underlined, so the highlight is not colour
    alone; the example's strongest token is also bold (`.max`)."""
    positive = [v for v in values if v > 0]
    top = scale if scale and scale > 0 else max(positive or [1.0])
    peak = max(positive) if positive else None
    pieces = _TOKEN_PIECES
    parts = []
    for tok, val in zip(tokens, values, strict=False):
        if val == 0:  # most tokens of a sparse feature: the smallest markup (the tooltip shows 0.000)
            parts.append(pieces[tok][1])
            continue
        alpha = val / top
        style = f' style="--a:{min(1.0, alpha):.3f}"' if alpha > 0 else ""
        cls = "tok hot max" if val == peak else "tok hot"
        parts.append(f'<span class="{cls}" tabindex="0" data-v="{val:.3f}" title="{val:.3f}"{style}>'
                     f"{pieces[tok][0]}")
    return "".join(parts)


def dfa_html(tokens: Sequence[str], values: Sequence[float], target: int | None) -> str:
    """Direct feature attribution of one example (attention SAEs): how much each source token, through
    attention, contributed to the feature at the target token. Blue for positive, red for negative, scaled
    to the largest magnitude; the target token is boxed. Focusable, with the value in the title."""
    top = max((abs(v) for v in values), default=0.0) or 1.0
    parts = []
    for i, (tok, val) in enumerate(zip(tokens, values, strict=False)):
        cls = "tok dfa" + (" neg" if val < 0 else "") + (" target" if i == target else "")
        label = f"DFA {val:.3f}" + (" (target token)" if i == target else "")
        style = f' style="--a:{min(1.0, abs(val) / top):.3f}"' if val else ""
        parts.append(f'<span class="{cls}" tabindex="0" data-v="{val:.3f}" title="{label}"{style}>'
                     f"{_TOKEN_PIECES[tok][0]}")
    return "".join(parts)


def activations_html(items: Iterable[Any], scale: float | None = None) -> str:
    """A bin group's example rows: max value, then the coloured tokens (see tokens_html). Each example
    is coloured relative to its own maximum (issue 18: one outlier at 5,200 left rows at 60 blank when
    every row was scaled to the feature's global max); `scale` is only a fallback. An example with DFA
    values (attention SAEs) gets a second row showing them."""
    rows = []
    for act in items:
        centre = act.max_value_token_index
        rows.append(
            f'<div class="activation" data-max="{act.max_value}" data-max-index="{centre}">'
            f'<span class="act-max num">{act.max_value:.2f}</span><span class="toks">'
            f"{tokens_html(act.tokens, act.values, act.max_value or scale)}</span></div>")
        dfa = getattr(act, "dfa_values", None)
        if dfa and len(dfa) == len(act.tokens):
            rows.append(
                f'<div class="activation dfa-row" data-max="{act.dfa_max_value}" data-max-index="{centre}" '
                'title="Direct feature attribution: each token\'s contribution, through attention, to the '
                'feature at the boxed token">'
                f'<span class="act-max num dfa-label">DFA</span><span class="toks">'
                f"{dfa_html(act.tokens, dfa, act.dfa_target_index)}</span></div>")
    return "".join(rows)


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
    log: bool = False


LOG_RATIO = 50.0  # counts spanning more than this factor are drawn on a log axis


def histogram(values: Sequence[float], heights: Sequence[float], *, width: int = 320,
              height: int = 110) -> Histogram | None:
    """Bars for an inline SVG: `values` are bin positions (x), `heights` their counts (y). When the
    non-zero counts span more than LOG_RATIO (one huge bin, a long tail), the y axis is log(1 + count)
    so the tail stays visible."""
    pairs = [(float(v), float(h)) for v, h in zip(values, heights, strict=False)
             if math.isfinite(v) and math.isfinite(h)]
    if not pairs:
        return None
    top = max(h for _, h in pairs) or 1.0
    nonzero = [h for _, h in pairs if h > 0]
    log = bool(nonzero) and max(nonzero) / min(nonzero) > LOG_RATIO

    def scaled(count: float) -> float:
        return math.log1p(max(count, 0.0)) / math.log1p(top) if log else count / top

    step = width / len(pairs)
    bars = []
    for i, (value, count) in enumerate(pairs):
        bar_h = (height - 4) * scaled(count)
        bars.append(Bar(x=round(i * step, 2), y=round(height - bar_h, 2), width=round(max(step - 1, 1), 2),
                        height=round(bar_h, 2), label=f"{value:.3g}: {count:g}", negative=value < 0))
    return Histogram(bars=bars, width=width, height=height, x_min=f"{pairs[0][0]:.3g}",
                     x_max=f"{pairs[-1][0]:.3g}", y_max=f"{top:g}", log=log)


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
    scale = (' <span class="axis-log" title="bar heights are log(1 + count)">log count</span>'
             if hist.log else "")
    return (f'<figure class="hist hist-{escape(kind)}{" log" if hist.log else ""}">'
            f'<svg viewBox="0 0 {hist.width} {hist.height}" '
            f'width="{hist.width}" height="{hist.height}" role="img" aria-label="{title}">{bars}</svg>'
            f"<figcaption><span>{escape(hist.x_min)}</span><span>{title}{scale}</span>"
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


# ---------------------------------------------------------------- evals: one readable table

_FRACTION = "fraction (0–1)"
_NATS = "nats / token"
EVAL_METRICS: dict[str, tuple[str, str, str]] = {
    "l0": ("L0", "features / token", "mean number of features active on a token"),
    "explained_variance": ("Explained variance", _FRACTION,
                           "1 − E‖x − x̂‖² / Var(x): the share of the activations' variance the SAE's "
                           "reconstruction x̂ keeps"),
    "ce_loss_score": ("CE loss recovered", _FRACTION,
                      "(CE zero-ablated − CE with SAE) / (CE zero-ablated − CE clean): 1 = splicing the SAE "
                      "in costs nothing, 0 = as bad as deleting the activations"),
    "frac_dead": ("Dead features", "% of features", "features that never fired on the dashboard dataset"),
    "dead_fraction": ("Dead features", "% of features", "features that never fired on the held-out tokens"),
    "mse": ("MSE", "squared L2 / token", "E‖x − x̂‖², summed over dimensions, averaged over tokens"),
    "cossim": ("Cosine similarity", _FRACTION, "mean cosine similarity of x and x̂"),
    "ce_loss_without_sae": ("CE loss, clean", _NATS, "next-token cross-entropy of the unmodified model"),
    "ce_loss_with_sae": ("CE loss, SAE spliced in", _NATS,
                         "cross-entropy with the reconstruction in place of the activations"),
    "ce_loss_with_ablation": ("CE loss, zero-ablated", _NATS, "cross-entropy with the activations set to 0"),
    "kl_div_score": ("KL divergence recovered", _FRACTION, "as CE loss recovered, with KL divergence"),
    "l0_dashboard": ("L0, whole dashboard dataset", "features / token",
                     "L0 over every dashboard token (attention-sink positions and special tokens left out)"),
    "positions_excluded": ("Positions left out", "positions", "the first positions of every sequence"),
    "n_tokens": ("Tokens", "tokens", "tokens these figures were measured on"),
    "n_eval_tokens": ("Eval tokens", "tokens", "tokens of the reconstruction and CE-loss evals"),
    "eval_tokens": ("Held-out tokens", "tokens", "tokens the trainer evaluated on"),
}
EVAL_GROUPS: dict[str, tuple[str, str]] = {
    "core": ("Core evals",
             "SAE-Lens's definitions, as SAEBench reports them: the SAE spliced in at every position except "
             "special tokens such as BOS (only where the model has one), averages over those tokens. "
             "Measured by the dashboard job."),
    "core/excluding_attention_sink": (
        "Core evals without the attention sink",
        "The same metrics with the first positions of each sequence left out of the splice, the ablation "
        "and the averages. A model's attention sink (SmolLM2's position 0 has a residual norm ~100× the "
        "median) is hard to reconstruct, so this variant reads higher. Not comparable with SAE-Lens or "
        "SAEBench figures."),
    "training": ("Training run",
                 "Measured by the trainer on held-out activations, attention-sink positions excluded, "
                 "before the dashboards existed. Kept for reference; the core evals above are the headline."),
}


@dataclass(frozen=True)
class EvalRow:
    key: str
    label: str
    value: str
    unit: str
    definition: str


@dataclass
class EvalGroup:
    key: str
    title: str
    note: str
    rows: list[EvalRow] = field(default_factory=list)


def _eval_value(key: str, value: Any) -> str:
    if isinstance(value, bool) or not is_number(value):
        return str(value)[:120]
    if not math.isfinite(value):
        return "n/a"
    if key in ("frac_dead", "dead_fraction"):
        return f"{100 * value:.3g}%"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    if abs(value) >= 1:
        return f"{value:.4g}"
    return f"{value:.3f}" if abs(value) >= 0.01 or value == 0 else f"{value:.3g}"


def _eval_rows(leaves: dict[str, Any]) -> list[EvalRow]:
    order = list(EVAL_METRICS)
    keys = sorted(leaves, key=lambda k: (order.index(k) if k in order else len(order), k))
    rows = []
    for key in keys:
        label, unit, definition = EVAL_METRICS.get(key, (key.replace("_", " ").capitalize(), "", ""))
        rows.append(EvalRow(key, label, _eval_value(key, leaves[key]), unit, definition))
    return rows


def eval_groups(evals: Iterable[Any]) -> list[EvalGroup]:
    """Eval rows (type + output, SAEBench's nested layout or flat) as titled groups of labelled metrics,
    with units and definitions. Nested groups merge into their eval's group, except a labelled variant
    (`excluding_attention_sink`), which gets its own."""
    groups = []
    for ev in evals:
        output = ev.output if isinstance(ev.output, dict) else {}
        leaves: dict[str, Any] = {}
        variants: dict[str, dict[str, Any]] = {}
        for key, value in output.items():
            if key.startswith("excluding_") and isinstance(value, dict):
                variants[key] = value
            elif isinstance(value, dict):
                leaves.update({k: v for k, v in value.items() if not isinstance(v, dict | list)})
            elif not isinstance(value, list):
                leaves[key] = value
        leaves.pop("definitions", None)
        title, note = EVAL_GROUPS.get(ev.type, (f"{ev.type.replace('_', ' ').capitalize()} evals", ""))
        groups.append(EvalGroup(ev.type, title, note, _eval_rows(leaves)))
        for key, values in variants.items():
            sub = f"{ev.type}/{key}"
            title, note = EVAL_GROUPS.get(sub, (key.replace("_", " ").capitalize(), ""))
            groups.append(EvalGroup(sub, title, note, _eval_rows(values)))
    order = ["core", "core/excluding_attention_sink", "training"]
    return sorted(groups, key=lambda g: order.index(g.key) if g.key in order else len(order))


@dataclass(frozen=True)
class LegendEntry:
    cluster: int
    colour: str
    count: int
    label: str  # an explanation from the cluster (its first explained feature), or empty


def umap_legend(points: Sequence[UmapPoint]) -> list[LegendEntry]:
    """One entry per cluster (largest first): its colour, size and an example explanation."""
    counts: dict[int, int] = {}
    sample: dict[int, str] = {}
    for p in points:
        counts[p.cluster] = counts.get(p.cluster, 0) + 1
        if p.explanation and p.cluster not in sample:
            sample[p.cluster] = p.explanation
    return [LegendEntry(c, cluster_colour(c), n, sample.get(c, "")) for c, n in
            sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
