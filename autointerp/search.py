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

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from django.db import connection, transaction
from django.db.models import BooleanField, Case, Q, QuerySet, Value, When
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, VectorField

from features.embedders_registry import DEFAULT_EMBEDDER, embedder_spec
from features.models import Explanation, Source, Visibility

ScopeKind = Literal["all", "model", "source_set", "release", "sources"]
MAX_PAGE_SIZE = 100


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


def searchable(scope: SearchScope, user: Any = None) -> Q:
    """Scope and visibility as a filter on the explanation's own `source_id`: the ids of the sources in
    scope that the user may see, or, for the whole catalog, the ids of those they may not (usually few),
    bounded by the newest source id seen so a source created after this query cannot slip through."""
    wanted = scope.source_filter() & visible_sources(user)
    if not wanted:  # staff, whole catalog
        return Q()
    if scope.kind != "all":
        return Q(source_id__in=sorted(Source.objects.filter(wanted).order_by().values_list("id", flat=True)))
    seen = list(Source.objects.annotate(
        ok=Case(When(wanted, then=Value(True)), default=Value(False), output_field=BooleanField())
    ).order_by().values_list("id", "ok"))
    hidden = sorted(pk for pk, ok in seen if not ok)
    if not hidden:
        return Q()
    return Q(source_id__lte=max(pk for pk, _ in seen)) & ~Q(source_id__in=hidden)


def search_queryset(
    vector: Any, *, embedder: str, scope: SearchScope, user: Any = None, filters: SearchFilters | None = None
) -> QuerySet[Explanation]:
    spec = embedder_spec(embedder)
    filters = filters or SearchFilters()
    distance = CosineDistance(Cast("embedding", VectorField(dimensions=spec.dimensions)), vector)
    queryset = (
        Explanation.objects.filter(embedder=spec.name)
        .filter(searchable(scope, user))
        .annotate(distance=distance)
    )
    if filters.explanation_type:
        queryset = queryset.filter(type_id=filters.explanation_type)
    if filters.explanation_model:
        queryset = queryset.filter(explanation_model_id=filters.explanation_model)
    if filters.max_distance is not None:
        queryset = queryset.filter(distance__lte=filters.max_distance)
    return (
        queryset.select_related("feature", "source")
        .only(
            "id",
            "description",
            "type_id",
            "explanation_model_id",
            "feature__index",
            "source__name",
            "source__model_id",
        )
        .order_by("distance", "id")
    )


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
) -> SearchPage:
    """One page of the explanations nearest to `query` (text, or a vector of the embedder's width)."""
    if offset < 0 or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"offset must be >= 0 and limit between 1 and {MAX_PAGE_SIZE}")
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
    queryset = search_queryset(
        vector.tolist(), embedder=spec.name, scope=scope or SearchScope(), user=user, filters=filters
    )
    if exact:  # a planner switch: local to a transaction so it cannot leak to other queries
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")
            rows = list(queryset[offset : offset + limit + 1])
    else:
        ef = ef_search or min(1000, max(100, 2 * (offset + limit + 1)))
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
