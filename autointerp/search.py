"""Semantic explanation search on pgvector (a selector: reads only).

The query is embedded with the embedder of the rows it searches, and the ORDER BY uses the same
`embedding::vector(d)` cast and `embedder = <name>` filter as that embedder's partial HNSW index, so the
planner can use it. Scope and visibility filters are part of the same SQL (unlike Neuronpedia, which
filters after the vector search and returns short pages); pgvector's iterative index scan
(`hnsw.iterative_scan = strict_order`) keeps scanning until the page is full, so pages are full and in
distance order.

Scope and visibility are properties of sources, and every explanation row carries its feature's source
(`source_id`, kept by a trigger: migration 0006). So both are resolved first, in one small query on the
source table, into a list of source ids; the vector query then tests each candidate the index scan yields
against that list on the row itself, and joins feature and source only for the rows of the page.
Joining every candidate instead (feature → source → set → model → release) made narrow scopes, which scan
~20 candidates per hit, the slow ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from django.db import connection, transaction
from django.db.models import BooleanField, Case, F, Q, QuerySet, Value, When
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, VectorField

from features.embedders_registry import DEFAULT_EMBEDDER, embedder_spec
from features.models import Explanation, Source, Visibility

ScopeKind = Literal["all", "model", "source_set", "release", "sources"]
MAX_PAGE_SIZE = 100
EXACT_MAX_ROWS = 10_000  # scopes are searched exactly up to this size at most (is_small)
EXACT_COST_RATIO = 10  # HNSW cost per scanned candidate / exact cost per row, measured at 1M rows
PAGE_FOR_COST = 21
# hnsw.ef_search for a first page. On 1M clustered rows (bench/explanation_search_bench.py) 100 left a few
# queries per hundred stranded in a wrong cluster (recall 0); 300 left none and, with fewer iterative
# rounds for filtered scopes, was no slower at p95.
EF_SEARCH = 300
RERANK_POOL = MAX_PAGE_SIZE  # nearest explanations re-ranked by score (rank="score")


@dataclass(frozen=True)
class SearchScope:
    kind: ScopeKind = "all"
    model_id: str = ""
    source_set: str = ""
    release: str = ""
    sources: tuple[tuple[str, str], ...] = ()  # (model_id, source name)

    def __post_init__(self) -> None:
        needs = {
            "model": self.model_id,
            "source_set": self.model_id and self.source_set,
            "release": self.release,
            "sources": self.sources,
        }
        if self.kind not in ("all", *needs):
            raise ValueError(f"unknown search scope {self.kind!r}")
        if self.kind in needs and not needs[self.kind]:
            raise ValueError(f"scope {self.kind!r} needs its identifier")

    def source_filter(self) -> Q:
        """The scope as a filter on `Source`."""
        if self.kind == "model":
            return Q(model_id=self.model_id)
        if self.kind == "source_set":
            return Q(source_set__model_id=self.model_id, source_set__name=self.source_set)
        if self.kind == "release":
            return Q(source_set__release_id=self.release)
        if self.kind == "sources":
            wanted = Q()
            for model_id, name in self.sources:
                wanted |= Q(model_id=model_id, name=name)
            return wanted
        return Q()


@dataclass(frozen=True)
class SearchFilters:
    explanation_type: str = ""
    explanation_model: str = ""
    max_distance: float | None = None
    min_score: float | None = None  # only explanations whose headline score is at least this


RANKS = ("similarity", "score")


@dataclass(frozen=True)
class SearchHit:
    explanation_id: int
    description: str
    model_id: str
    source: str
    index: int
    distance: float
    explanation_type: str
    explanation_model: str
    score: float | None = None
    method: str = ""
    score_type_name: str = ""

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    offset: int
    limit: int
    has_more: bool
    embedder: str


def visible_sources(user: Any = None) -> Q:
    """Sources whose model, source set, source and release are listed (PUBLIC), or whose model / source set
    the user created. Staff see everything."""
    if user is not None and getattr(user, "is_staff", False):
        return Q()
    public = Visibility.PUBLIC
    model_ok = Q(model__visibility=public)
    set_ok = Q(source_set__visibility=public)
    if user is not None and getattr(user, "pk", None):
        model_ok |= Q(model__creator=user)
        set_ok |= Q(source_set__creator=user)
    release_ok = Q(source_set__release__isnull=True) | Q(source_set__release__visibility=public)
    return model_ok & set_ok & Q(visibility=public) & release_ok


@dataclass(frozen=True)
class SourceIds:
    """Scope and visibility resolved against the source table: the explanation rows to search are those
    whose `source_id` is in `only` (a scoped search), or any but `hidden` up to `newest` (the whole
    catalog: usually few hidden sources; bounded by the newest source id seen, so a source created after
    this lookup cannot slip in). Neither: staff over the whole catalog, no filter at all."""

    only: tuple[int, ...] | None = None
    hidden: tuple[int, ...] = ()
    newest: int = 0
    features: int | None = None  # sum of the scoped sources' num_features, None when any is unknown

    def condition(self, *, for_index: bool) -> Q:
        """The filter on explanation rows. `for_index`: written as `source_id + 0`, which no btree index
        matches, so the planner keeps the HNSW scan and tests it per candidate (see search_explanations)."""
        column = "source_plus_zero" if for_index else "source_id"
        if self.only is not None:
            return Q(**{f"{column}__in": self.only})
        if self.hidden:
            return Q(**{f"{column}__lte": self.newest}) & ~Q(**{f"{column}__in": self.hidden})
        return Q()


def source_ids(scope: SearchScope, user: Any = None) -> SourceIds:
    """One small query on the source table."""
    wanted = scope.source_filter() & visible_sources(user)
    if not wanted:  # staff, whole catalog
        return SourceIds()
    if scope.kind != "all":
        rows = list(Source.objects.filter(wanted).order_by().values_list("id", "num_features"))
        sizes = [n for _, n in rows]
        return SourceIds(only=tuple(sorted(pk for pk, _ in rows)),
                         features=None if None in sizes else sum(sizes))
    seen = list(Source.objects.annotate(
        ok=Case(When(wanted, then=Value(True)), default=Value(False), output_field=BooleanField())
    ).order_by().values_list("id", "ok"))
    hidden = tuple(sorted(pk for pk, ok in seen if not ok))
    return SourceIds(hidden=hidden, newest=max((pk for pk, _ in seen), default=0))


def search_queryset(
    vector: Any,
    *,
    embedder: str,
    scope: SearchScope,
    user: Any = None,
    filters: SearchFilters | None = None,
    sources: SourceIds | None = None,
    for_index: bool = True,
) -> QuerySet[Explanation]:
    spec = embedder_spec(embedder)
    filters = filters or SearchFilters()
    sources = sources or source_ids(scope, user)
    distance = CosineDistance(Cast("embedding", VectorField(dimensions=spec.dimensions)), vector)
    queryset = (
        Explanation.objects.filter(embedder=spec.name)
        .alias(source_plus_zero=F("source_id") + 0)
        .filter(sources.condition(for_index=for_index))
        .annotate(distance=distance)
    )
    if filters.explanation_type:
        queryset = queryset.filter(type_id=filters.explanation_type)
    if filters.explanation_model:
        queryset = queryset.filter(explanation_model_id=filters.explanation_model)
    if filters.max_distance is not None:
        queryset = queryset.filter(distance__lte=filters.max_distance)
    if filters.min_score is not None:
        queryset = queryset.filter(score__gte=filters.min_score)
    return (
        queryset.select_related("feature", "source")
        .only(
            "id",
            "description",
            "type_id",
            "explanation_model_id",
            "score",
            "method",
            "score_type_name",
            "feature__index",
            "source__name",
            "source__model_id",
        )
        .order_by("distance", "id")
    )


def is_small(sources: SourceIds, embedder: str) -> bool:
    """Whether an exact search of the scope's rows, read through the (source_id, embedder) index, beats
    the HNSW scan. The scan walks ~page / selectivity candidates (for one source in a catalog of millions,
    tens of thousands, and it may stop at `hnsw.max_scan_tuples` with a short page); the exact search
    reads n rows. Measured per row / per candidate (bench/explanation_search_bench.py), exact wins while
    n² < EXACT_COST_RATIO · page · N, N the table's rows; never above EXACT_MAX_ROWS. n is counted with a
    bounded index-only scan, and not at all when the scope's sources declare many more features."""
    if sources.only is None:
        return False
    if not sources.only:
        return True
    if sources.features is not None and sources.features > 2 * EXACT_MAX_ROWS:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT reltuples FROM pg_class WHERE oid = 'features_explanation'::regclass), count(*) "
            "FROM (SELECT 1 FROM features_explanation WHERE source_id = ANY(%s) AND embedder = %s "
            "LIMIT %s) AS scoped",
            [list(sources.only), embedder, EXACT_MAX_ROWS + 1],
        )
        total, rows = cursor.fetchone()
    total = max(float(total), float(rows))  # reltuples is -1 before the first ANALYZE
    return rows <= min(EXACT_MAX_ROWS, math.sqrt(EXACT_COST_RATIO * PAGE_FOR_COST * total))


def _hits(rows: list[Explanation]) -> list[SearchHit]:
    return [
        SearchHit(
            explanation_id=row.pk,
            description=row.description,
            model_id=row.source.model_id,
            source=row.source.name,
            index=row.feature.index,
            distance=float(row.distance),  # type: ignore[attr-defined]
            explanation_type=row.type_id or "",
            explanation_model=row.explanation_model_id or "",
            score=row.score,
            method=row.method,
            score_type_name=row.score_type_name,
        )
        for row in rows
    ]


def search_explanations(
    query: str | list[float] | np.ndarray,
    *,
    scope: SearchScope | None = None,
    user: Any = None,
    embedder: str = DEFAULT_EMBEDDER,
    offset: int = 0,
    limit: int = 20,
    filters: SearchFilters | None = None,
    exact: bool = False,
    ef_search: int | None = None,
    rank: str = "similarity",
) -> SearchPage:
    """One page of the explanations nearest to `query` (text, or a vector of the embedder's width).

    `rank="score"` re-ranks by headline score the RERANK_POOL nearest explanations (relevance first
    decides which are candidates, the score their order; unscored ones last); paging is over that pool."""
    if offset < 0 or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"offset must be >= 0 and limit between 1 and {MAX_PAGE_SIZE}")
    if rank not in RANKS:
        raise ValueError(f"rank must be one of {', '.join(RANKS)}, not {rank!r}")
    if rank == "score":
        pool = search_explanations(query, scope=scope, user=user, embedder=embedder, offset=0,
                                   limit=RERANK_POOL, filters=filters, exact=exact, ef_search=ef_search)
        ranked = sorted(pool.hits, key=lambda h: (h.score is None, -(h.score or 0.0), h.distance))
        return SearchPage(hits=ranked[offset : offset + limit], offset=offset, limit=limit,
                          has_more=len(ranked) > offset + limit, embedder=pool.embedder)
    spec = embedder_spec(embedder)
    if isinstance(query, str):
        if len(query.strip()) < 3:
            raise ValueError("the query must have at least 3 characters")
        from autointerp.embedders import get_embedder  # noqa: PLC0415

        vector = get_embedder(spec.name, user=user).embed([query.strip()])[0]
    else:
        vector = np.asarray(query, dtype=np.float32)
    if vector.shape != (spec.dimensions,):
        raise ValueError(f"{spec.name} vectors have {spec.dimensions} dimensions, got {vector.shape}")
    scope = scope or SearchScope()
    sources = source_ids(scope, user)
    exact = exact or is_small(sources, spec.name)
    queryset = search_queryset(
        vector.tolist(), embedder=spec.name, scope=scope, user=user, filters=filters, sources=sources,
        for_index=not exact,
    )
    if exact:  # a planner switch: local to a transaction so it cannot leak to other queries
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")  # the bitmap scan of a scope stays allowed
            rows = list(queryset[offset : offset + limit + 1])
    else:
        ef = ef_search or min(1000, max(EF_SEARCH, 2 * (offset + limit + 1)))
        # hnsw.* settings only steer HNSW scans, which all come through here and set them first, so they
        # are set per session (SET, not SET LOCAL): no BEGIN/COMMIT, two round trips instead of six.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SET hnsw.ef_search = {int(ef)}; SET hnsw.iterative_scan = strict_order; "
                "SET hnsw.max_scan_tuples = 100000"
            )
        rows = list(queryset[offset : offset + limit + 1])
    return SearchPage(
        hits=_hits(rows[:limit]), offset=offset, limit=limit, has_more=len(rows) > limit, embedder=spec.name
    )
