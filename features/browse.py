"""Reads for the browse pages (issue 18): releases, source sets across layers, the SAEBench-style comparison
of every source's evals, the model page grouped by set and layer, and the feature page's extra panels.

Metrics come from the `core` Eval that the dashboards job writes (SAEBench's layout: sparsity.l0,
reconstruction_quality.explained_variance, model_performance_preservation.ce_loss_score, misc.frac_dead);
the training tokens from the `training` Eval or the SAE-Lens config. A flat output (`{"l0": ...}`, as some
imports carry) is read as well. Missing values stay None ("—" on the page), never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404

from features.models import Eval, Feature, Model, Source, SourceRelease, SourceSet, Visibility
from features.selectors import LISTED, top_explanations

# A feature is "dense" when it fires on more than this share of tokens (SAEBench's core eval counts
# features with a firing frequency above 10% as dense).
DENSE_THRESHOLD = 0.1
BROWSER_PAGE = 50
UMAP_POINTS_TOTAL = 8_000  # a set's map holds at most this many points, shared out over its sources
FRACTIONS_TTL = 600  # seconds the counted dead/dense fractions of a source are reused

# (key, label, unit/definition) of the comparison columns, in display order
METRICS: list[tuple[str, str, str]] = [
    ("l0", "L0", "mean number of active features per token"),
    (
        "explained_variance",
        "Explained variance",
        "1 − residual variance / variance of the input (higher is better)",
    ),
    (
        "ce_loss_score",
        "CE loss recovered",
        "(CE zero-ablated − CE with SAE) / (CE zero-ablated − CE clean); "
        "1 = no loss from splicing the SAE in",
    ),
    ("frac_dead", "Dead fraction", "share of features that never fired on the eval tokens"),
    (
        "frac_dense",
        "Dense fraction",
        f"share of features that fire on more than {DENSE_THRESHOLD:.0%} of tokens",
    ),
]

# shown on the comparison page only, beside the headline metrics (the dashboards job labels this variant)
COMPARE_EXTRA: list[tuple[str, str, str]] = [
    ("ce_loss_score_sink", "CE loss recovered, excl. sink",
     "CE loss recovered leaving the first positions (attention sinks) out of the splice and the loss; a "
     "labelled variant beside the headline figure, not a replacement"),
]

_PATHS: dict[str, list[tuple[str, ...]]] = {
    "ce_loss_score_sink": [("excluding_attention_sink", "ce_loss_score")],
    "l0": [("sparsity", "l0"), ("l0",)],
    "explained_variance": [("reconstruction_quality", "explained_variance"), ("explained_variance",)],
    "ce_loss_score": [
        ("model_performance_preservation", "ce_loss_score"),
        ("ce_loss_score",),
        ("ce_loss_recovered",),
    ],
    "frac_dead": [("misc", "frac_dead"), ("frac_dead",), ("dead_fraction",)],
    "frac_dense": [("misc", "frac_dense"), ("frac_dense",), ("dense_fraction",)],
    "n_tokens": [("misc", "n_tokens"), ("n_tokens",)],
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def metric(output: dict[str, Any] | None, key: str) -> float | None:
    """One metric from an eval output, whichever of the known layouts it uses."""
    for path in _PATHS.get(key, [(key,)]):
        node: Any = output or {}
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        number = _number(node)
        if number is not None:
            return number
    return None


@dataclass
class SourceRow:
    """One source with its headline metrics (None = not measured)."""

    source: Source
    metrics: dict[str, float | None] = field(default_factory=dict)
    training_tokens: float | None = None
    eval_tokens: float | None = None
    live: bool = False

    @property
    def width(self) -> int | None:
        return self.source.num_features

    def as_json(self) -> dict[str, Any]:
        s = self.source
        return {
            "model": s.model_id,
            "set": s.source_set.name,
            "source": s.name,
            "layer": s.layer,
            "release": s.source_set.release_id or "",
            "width": s.num_features,
            "type": s.source_set.type,
            "hook": s.hook_name,
            "url": f"/{s.model_id}/{s.name}/",
            "training_tokens": self.training_tokens,
            "eval_tokens": self.eval_tokens,
            **self.metrics,
        }


def listed_sources() -> QuerySet[Source]:
    return (
        Source.objects.filter(
            visibility__in=LISTED, source_set__visibility__in=LISTED, model__visibility=Visibility.PUBLIC
        )
        .select_related("model", "source_set", "source_set__release")
        .prefetch_related(Prefetch("evals", queryset=Eval.objects.filter(type__in=["core", "training"])))
        .order_by("model_id", "source_set__name", "layer", "name")
    )


def _feature_fractions(source_ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """(features, dead, dense) counted from the Feature rows, for sources whose eval lacks them: one
    grouped query (an index-only count per source would need the full rows anyway)."""
    if not source_ids:
        return {}
    from django.core.cache import cache  # noqa: PLC0415

    keys = {sid: f"np:browse:fractions:{sid}" for sid in source_ids}
    cached = cache.get_many(list(keys.values()))
    out = {sid: tuple(cached[key]) for sid, key in keys.items() if key in cached}
    missing = [sid for sid in source_ids if sid not in out]
    if missing:
        fresh = _count_fractions(missing)
        cache.set_many({keys[sid]: fresh.get(sid, (0, 0, 0)) for sid in missing}, FRACTIONS_TTL)
        out.update(fresh)
    return out


def _count_fractions(source_ids: list[int]) -> dict[int, tuple[int, int, int]]:
    rows = (
        Feature.objects.filter(source_id__in=source_ids)
        .values("source_id")
        .annotate(
            n=Count("id"),
            dead=Count("id", filter=Q(is_dead=True)),
            dense=Count("id", filter=Q(frac_nonzero__gt=DENSE_THRESHOLD)),
        )
    )
    return {r["source_id"]: (r["n"], r["dead"], r["dense"]) for r in rows}


def source_rows(sources: list[Source], live: set[tuple[str, str]] | None = None) -> list[SourceRow]:
    """Metrics of `sources` (with their core/training evals prefetched)."""
    rows = []
    missing_dense = []
    for source in sources:
        evals = {e.type: e.output for e in source.evals.all()}
        core, training = evals.get("core"), evals.get("training") or {}
        row = SourceRow(source=source, live=(source.model_id, source.name) in (live or set()))
        row.metrics = {key: metric(core, key) for key, _, _ in METRICS + COMPARE_EXTRA}
        row.eval_tokens = metric(core, "n_tokens")
        cfg_meta = (source.saelens_config or {}).get("metadata") or {}
        row.training_tokens = (
            _number(training.get("n_tokens"))
            or _number(cfg_meta.get("training_tokens"))
            or _number((source.saelens_config or {}).get("training_tokens"))
        )
        if row.metrics["frac_dense"] is None or row.metrics["frac_dead"] is None:
            missing_dense.append(row)
        rows.append(row)
    counts = _feature_fractions([r.source.pk for r in missing_dense if r.source.has_dashboards])
    for row in missing_dense:
        n, dead, dense = counts.get(row.source.pk, (0, 0, 0))
        if n:
            if row.metrics["frac_dense"] is None:
                row.metrics["frac_dense"] = dense / n
            if row.metrics["frac_dead"] is None:
                row.metrics["frac_dead"] = dead / n
    return rows


# --- releases, sets, models ----------------------------------------------------------------------


def get_release(name: str) -> SourceRelease | None:
    return (
        SourceRelease.objects.filter(name=name, visibility__in=[Visibility.PUBLIC, Visibility.UNLISTED])
        .prefetch_related(
            Prefetch(
                "source_sets",
                queryset=SourceSet.objects.filter(visibility__in=LISTED, model__visibility=Visibility.PUBLIC)
                .select_related("model")
                .prefetch_related(
                    Prefetch(
                        "sources",
                        queryset=Source.objects.filter(visibility__in=LISTED).order_by("layer", "name"),
                    )
                )
                .order_by("model_id", "name"),
            )
        )
        .first()
    )


def get_listed_set(model_id: str, name: str) -> SourceSet | None:
    return (
        SourceSet.objects.filter(
            model_id=model_id, name=name, visibility__in=[Visibility.PUBLIC, Visibility.UNLISTED]
        )
        .select_related("model", "release")
        .prefetch_related(
            Prefetch(
                "sources",
                queryset=Source.objects.filter(visibility__in=LISTED)
                .prefetch_related(
                    Prefetch("evals", queryset=Eval.objects.filter(type__in=["core", "training"]))
                )
                .select_related("model", "source_set", "source_set__release")
                .order_by("layer", "name"),
            )
        )
        .first()
    )


def model_exists(model_id: str) -> bool:
    return Model.objects.filter(pk=model_id, visibility__in=[Visibility.PUBLIC, Visibility.UNLISTED]).exists()


def get_model_with_sets(model_id: str) -> Model:
    model = Model.objects.filter(pk=model_id).first()
    if model is None:
        raise Http404(f"model {model_id} not found")
    return model


def model_source_sets(model: Model) -> list[SourceSet]:
    return list(
        SourceSet.objects.filter(model=model, visibility__in=LISTED)
        .select_related("release")
        .prefetch_related(
            Prefetch(
                "sources",
                queryset=Source.objects.filter(visibility__in=LISTED)
                .prefetch_related(
                    Prefetch("evals", queryset=Eval.objects.filter(type__in=["core", "training"]))
                )
                .select_related("model", "source_set", "source_set__release")
                .order_by("layer", "name"),
            )
        )
        .order_by("name")
    )


def layer_grid(sets: list[SourceSet]) -> tuple[list[int], list[dict[str, Any]]]:
    """Layers (rows) × sets (columns): each cell lists that set's sources at that layer."""
    layers = sorted({s.layer for ss in sets for s in ss.sources.all()})
    grid = []
    for layer in layers:
        grid.append(
            {"layer": layer, "cells": [[s for s in ss.sources.all() if s.layer == layer] for ss in sets]}
        )
    return layers, grid


# --- cross-layer browser and UMAP of a set -------------------------------------------------------


def _after_cursor(cursor: str, positions: dict[str, int]) -> tuple[float, int, int] | None:
    """`value:source:index` -> (value, source position, index); None when absent or unreadable."""
    value, _, rest = cursor.partition(":")
    name, _, index = rest.rpartition(":")
    try:
        number, at, after = float(value), positions[name], int(index)
    except (ValueError, KeyError):
        return None
    finite = number == number and abs(number) != float("inf")
    return (number, at, after) if finite and abs(after) < 2**31 and abs(number) < 2**31 else None


_PAGE_SQL = {
    # per source (LATERAL): an index range scan from the cursor; the outer query merges the sources
    "max": """
        SELECT f.id, f.index, f.max_act_approx, f.frac_nonzero, f.is_dead, f.source_id, s.pos
        FROM unnest(%(ids)s::bigint[], %(pos)s::int[]) AS s(id, pos)
        CROSS JOIN LATERAL (
            SELECT id, index, max_act_approx, frac_nonzero, is_dead, source_id FROM features_feature
            WHERE source_id = s.id AND max_act_approx IS NOT NULL
              AND (%(v)s::real IS NULL OR (max_act_approx <= %(v)s::real AND (
                   max_act_approx < %(v)s::real OR s.pos > %(at)s OR (s.pos = %(at)s AND index > %(i)s))))
            ORDER BY max_act_approx DESC, index LIMIT %(n)s) f
        ORDER BY f.max_act_approx DESC, s.pos, f.index LIMIT %(n)s""",
    "index": """
        SELECT f.id, f.index, f.max_act_approx, f.frac_nonzero, f.is_dead, f.source_id, s.pos
        FROM unnest(%(ids)s::bigint[], %(pos)s::int[]) AS s(id, pos)
        CROSS JOIN LATERAL (
            SELECT id, index, max_act_approx, frac_nonzero, is_dead, source_id FROM features_feature
            WHERE source_id = s.id
              AND (%(i)s::int IS NULL OR (index >= %(i)s AND (index > %(i)s OR s.pos > %(at)s)))
            ORDER BY index LIMIT %(n)s) f
        ORDER BY f.index, s.pos LIMIT %(n)s""",
}


def set_feature_page(
    sources: list[Source], *, sort: str, after: str = "", size: int = BROWSER_PAGE
) -> tuple[list[tuple[Feature, str]], str]:
    """One page of the features of several sources, merged in (index, layer) or (max activation desc, layer,
    index) order, in one query. Keyset paging: `after` is the last row's `value:source:index`, and each
    source is read through its (source, index) or (source, -max_act_approx) index for at most size+1 rows
    past the cursor, so any page costs the same whatever the sources' sizes. Returns ((feature,
    explanation) rows, the next page's cursor or "")."""
    if not sources:
        return [], ""
    sort = "max" if sort == "max" else "index"
    positions = {src.name: n for n, src in enumerate(sources)}
    by_id = {src.pk: src for src in sources}
    cursor = _after_cursor(after, positions) if after else None
    params = {"ids": [src.pk for src in sources], "pos": list(range(len(sources))), "n": size + 1,
              "v": cursor[0] if cursor and sort == "max" else None, "at": cursor[1] if cursor else 0,
              "i": cursor[2] if cursor else None}
    if sort == "index" and cursor:
        params["i"] = int(cursor[0])  # the cursor's value is the index itself
    elif sort == "max" and cursor is None:
        params["i"] = 0
    window = list(Feature.objects.raw(_PAGE_SQL[sort], params))
    for f in window:
        f.source = by_id[f.source_id]  # no extra query for the link
    more = len(window) > size
    window = window[:size]
    names = top_explanations([f.pk for f in window])
    next_cursor = ""
    if more and window:
        last = window[-1]
        value = last.max_act_approx if sort == "max" else last.index
        next_cursor = f"{value!r}:{last.source.name}:{last.index}"
    return [(f, names.get(f.pk, "")) for f in window], next_cursor


def set_umap_rows(sources: list[Source], total: int = UMAP_POINTS_TOTAL) -> list[dict[str, Any]]:
    """UMAP points of every source of a set, each source scaled into its own box side by side would hide
    the overlap; instead each source's coordinates are normalised to [0, 1] (UMAP axes carry no units and
    differ per source) and drawn on one map, coloured by layer. At most `total` points, shared out over the
    sources (the first features by index of each)."""
    from django.db.models import OuterRef, Subquery  # noqa: PLC0415

    from features.models import Explanation  # noqa: PLC0415

    points: list[dict[str, Any]] = []
    per_source = max(100, total // max(len(sources), 1))
    for source in sources:
        best = (
            Explanation.objects.filter(feature_id=OuterRef("pk"))
            .order_by("-score_v2", "-score_v1", "id")
            .values("description")[:1]
        )
        rows = list(
            Feature.objects.filter(source=source, umap_x__isnull=False, umap_y__isnull=False)
            .order_by("index")
            .annotate(best=Subquery(best))
            .values_list("index", "umap_x", "umap_y", "best")[:per_source]
        )
        if not rows:
            continue
        xs, ys = [r[1] for r in rows], [r[2] for r in rows]
        x0, y0 = min(xs), min(ys)
        sx, sy = (max(xs) - x0) or 1.0, (max(ys) - y0) or 1.0
        for index, x, y, best_text in rows:
            points.append(
                {
                    "source": source.name,
                    "layer": source.layer,
                    "index": index,
                    "url": f"/{source.model_id}/{source.name}/{index}",
                    "x": round(10 + 580 * (x - x0) / sx, 1),
                    "y": round(10 + 580 * (1 - (y - y0) / sy), 1),
                    "explanation": best_text or "",
                }
            )
    return points


def layer_colour(position: int, count: int) -> str:
    """Distinct hues along the layers of a set (early = blue, late = red)."""
    hue = 220 - int(220 * position / max(count - 1, 1))
    return f"hsl({hue} 70% 45%)"
