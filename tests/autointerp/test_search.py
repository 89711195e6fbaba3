"""Semantic search on real pgvector: scopes, visibility and filters inside the query, full pages."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.db import connection

from autointerp.search import SearchFilters, SearchScope, search_explanations, search_queryset
from features.embedders_registry import MINILM
from features.models import Explanation, ExplanationModel, ExplanationType, Visibility
from tests import factories

pytestmark = pytest.mark.django_db
DIMS = MINILM.dimensions


def _unit(seed: int) -> np.ndarray:
    vec = np.random.default_rng(seed).normal(size=DIMS)
    return vec / np.linalg.norm(vec)


QUERY = _unit(0)


def _near(rank: int) -> np.ndarray:
    """Vectors at increasing distance from QUERY as `rank` grows."""
    vec = QUERY + (0.05 + 0.02 * rank) * _unit(1000 + rank)
    return vec / np.linalg.norm(vec)


@pytest.fixture
def corpus(catalog: dict[str, Any], alice: Any) -> dict[str, Any]:
    ExplanationType.objects.create(name="np_max-act-logits")
    ExplanationModel.objects.create(name="m1")
    other_model = factories.make_model("gemma-2-2b", layers=26, dimension=2304)
    private = factories.make_source(other_model, 3, "private-set")
    private.source_set.visibility, private.source_set.creator = Visibility.PRIVATE, alice
    private.source_set.save()
    sources = {
        "gpt2/6": catalog["source"],
        "gpt2/7": factories.make_source(catalog["model"], 7),
        "gemma/5": factories.make_source(other_model, 5, "gemmascope"),
        "private": private,
    }
    rank = 0
    for key, source in sources.items():
        for i in range(10):
            feature = factories.make_feature(source, 100 + i)
            Explanation.objects.create(
                feature=feature,
                description=f"{key}#{i}",
                embedding=_near(rank),
                embedder=MINILM.name,
                type_id="np_max-act-logits" if i % 2 else None,
                explanation_model_id="m1" if i % 2 else None,
            )
            rank += 1
    return sources


def _keys(page: Any) -> list[str]:
    return [hit.description for hit in page.hits]


def test_all_scope_returns_nearest_first_and_hides_private_sources(corpus: dict) -> None:
    page = search_explanations(QUERY, limit=20)
    assert _keys(page)[:3] == ["gpt2/6#0", "gpt2/6#1", "gpt2/6#2"]
    assert not any(k.startswith("private") for k in _keys(page))
    assert page.has_more


def test_creator_sees_their_private_source_set(corpus: dict, alice: Any) -> None:
    page = search_explanations(QUERY, limit=100, user=alice)
    assert sum(k.startswith("private") for k in _keys(page)) == 10


@pytest.mark.parametrize(
    ("scope", "prefixes"),
    [
        (SearchScope(kind="model", model_id="gemma-2-2b"), {"gemma/5"}),
        (SearchScope(kind="source_set", model_id="gpt2-small", source_set="res-jb"), {"gpt2/6", "gpt2/7"}),
        (SearchScope(kind="release", release="res-jb-release"), {"gpt2/6", "gpt2/7"}),
        (
            SearchScope(kind="sources", sources=(("gpt2-small", "7-res-jb"), ("gemma-2-2b", "5-gemmascope"))),
            {"gpt2/7", "gemma/5"},
        ),
    ],
)
def test_scopes(corpus: dict, scope: SearchScope, prefixes: set[str]) -> None:
    page = search_explanations(QUERY, scope=scope, limit=100)
    assert {k.split("#")[0] for k in _keys(page)} == prefixes
    assert len(page.hits) == 10 * len(prefixes)


def test_filters_apply_inside_the_query_so_pages_are_full(corpus: dict) -> None:
    filters = SearchFilters(explanation_type="np_max-act-logits", explanation_model="m1")
    first = search_explanations(QUERY, filters=filters, limit=7)
    second = search_explanations(QUERY, filters=filters, limit=7, offset=7)
    assert len(first.hits) == len(second.hits) == 7
    assert first.has_more
    assert all(int(k.split("#")[1]) % 2 for k in _keys(first) + _keys(second))
    assert not set(_keys(first)) & set(_keys(second))
    assert [h.distance for h in first.hits] == sorted(h.distance for h in first.hits)
    assert first.hits[-1].distance <= second.hits[0].distance


def test_last_page_reports_no_more(corpus: dict) -> None:
    page = search_explanations(
        QUERY, scope=SearchScope(kind="model", model_id="gemma-2-2b"), offset=5, limit=20
    )
    assert len(page.hits) == 5
    assert not page.has_more


def test_text_query_is_embedded_with_the_rows_embedder(catalog: dict) -> None:
    from autointerp.embedders import MiniLMEmbedder

    texts = ["cats and kittens", "interest rates and bonds", "python programming"]
    for i, (text, vec) in enumerate(zip(texts, MiniLMEmbedder().embed(texts), strict=True)):
        Explanation.objects.create(
            feature=factories.make_feature(catalog["source"], 300 + i),
            description=text,
            embedding=vec,
            embedder=MINILM.name,
        )
    assert search_explanations("a pet cat").hits[0].description == "cats and kittens"


def test_search_query_uses_the_partial_hnsw_index(corpus: dict) -> None:
    queryset = search_queryset(QUERY.tolist(), embedder=MINILM.name, scope=SearchScope(), user=None)[:20]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        # tiny tables: make the ordered index scan the only plan
        cursor.execute("SET LOCAL enable_sort = off")
        sql, params = queryset.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert MINILM.index_name in plan


def test_bad_requests_are_rejected() -> None:
    with pytest.raises(ValueError, match="384 dimensions"):
        search_explanations([0.1] * 256)
    with pytest.raises(ValueError, match="needs its identifier"):
        SearchScope(kind="model")


def test_staff_see_every_source_and_a_private_release_hides_its_sources(
    corpus: dict, admin_user: Any, alice: Any
) -> None:
    staff_keys = _keys(search_explanations(QUERY, limit=100, user=admin_user))
    assert sum(k.startswith("private") for k in staff_keys) == 10
    release = corpus["gpt2/6"].source_set.release
    release.visibility = Visibility.PRIVATE
    release.save()
    for user in (None, alice):
        keys = _keys(search_explanations(QUERY, limit=100, user=user))
        assert not any(k.startswith("gpt2/") for k in keys)
    assert len(search_explanations(QUERY, limit=100, user=admin_user).hits) == 40


def test_a_source_created_after_the_visibility_lookup_is_not_searched(corpus: dict) -> None:
    """The whole-catalog filter excludes the hidden sources it knows of, bounded by the newest source id it
    saw: a private source created between that lookup and the vector query cannot leak."""
    from autointerp.search import source_ids

    condition = source_ids(SearchScope(), None).condition(for_index=False)
    late = factories.make_source(corpus["gpt2/6"].model, 9, visibility=Visibility.PRIVATE)
    Explanation.objects.create(feature=factories.make_feature(late, 0), description="late#0",
                               embedding=QUERY, embedder=MINILM.name)
    found = Explanation.objects.filter(condition, embedder=MINILM.name).values_list("description", flat=True)
    assert "late#0" not in set(found)
    assert "gpt2/6#0" in set(found)


def test_the_vector_query_filters_on_the_row_and_joins_only_feature_and_source(corpus: dict) -> None:
    scope = SearchScope(kind="sources", sources=(("gpt2-small", "7-res-jb"),))
    sql = str(search_queryset(QUERY.tolist(), embedder=MINILM.name, scope=scope, user=None)[:20].query)
    # `+ 0`: no btree index matches it, so the planner cannot trade the HNSW scan for an exact one
    assert '("features_explanation"."source_id" + 0) IN' in sql
    for table in ("features_sourceset", "features_model", "features_sourcerelease"):
        assert table not in sql


def test_small_scopes_are_searched_exactly_through_the_source_index(corpus: dict, monkeypatch) -> None:
    from autointerp import search

    two = SearchScope(kind="sources", sources=(("gpt2-small", "7-res-jb"), ("gemma-2-2b", "5-gemmascope")))
    sources = search.source_ids(two)
    assert search.is_small(sources, MINILM.name)  # 20 rows
    assert not search.is_small(search.source_ids(SearchScope()), MINILM.name)  # whole catalog: HNSW
    monkeypatch.setattr(search, "EXACT_MAX_ROWS", 19)
    assert not search.is_small(sources, MINILM.name)
    assert _keys(search_explanations(QUERY, scope=two, limit=100)) == _keys(
        search_explanations(QUERY, scope=two, limit=100, exact=True))

    queryset = search_queryset(QUERY.tolist(), embedder=MINILM.name, scope=two, sources=sources,
                               for_index=False)
    with connection.cursor() as cursor:
        # statistics, as a live database has them: without, every index estimates 1 row and the planner's
        # tie-break picked the single-column `embedder` index whenever this test ran alone (it passed only
        # after other tests had run, so it failed or passed depending on what ran before it)
        cursor.execute("ANALYZE features_explanation")
        cursor.execute("SET LOCAL enable_indexscan = off")  # as search_explanations does for the exact path
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: make the index the only plan
        sql, params = queryset[:20].query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "explanation_source_embedder" in plan
    assert MINILM.index_name not in plan


def test_sources_declaring_many_features_skip_the_count(corpus: dict, django_assert_num_queries) -> None:
    from autointerp import search

    for key in ("gpt2/7", "gemma/5"):
        corpus[key].num_features = 24_576
        corpus[key].save()
    sources = search.source_ids(
        SearchScope(kind="sources", sources=(("gpt2-small", "7-res-jb"), ("gemma-2-2b", "5-gemmascope"))))
    assert sources.features == 2 * 24_576
    with django_assert_num_queries(0):
        assert not search.is_small(sources, MINILM.name)
