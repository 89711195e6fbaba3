"""Issue 15: regenerating a source's dashboards deletes its generated activations with a plan that cannot
go quadratic. Bounded on the plan (rows each node touches), not on wall time: the source has 100k
generated rows written in the same transaction (no statistics yet, as in dashboard regeneration), beside
another source's rows and a user's own examples, which must stay."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection

from features.models import Activation, Feature
from inference.dashboards import DELETE_GENERATED_SQL, delete_generated_activations
from tests import factories

pytestmark = pytest.mark.django_db

FEATURES, PER_FEATURE = 1_000, 100  # 100k generated activations


def _generate(source: Any, n_features: int, per_feature: int) -> list[int]:
    Feature.objects.bulk_create([Feature(source=source, index=i) for i in range(n_features)])
    ids = list(Feature.objects.filter(source=source).values_list("id", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Activation._meta.db_table} (feature_id, external_id, tokens, \"values\", "
            "max_value, max_value_token_index, created_at) "
            "SELECT f, '', ARRAY['a','b'], ARRAY[0.0, g::real], g, 1, now() "
            "FROM unnest(%s::bigint[]) f, generate_series(1, %s) g", [ids, per_feature])
    return ids


def _touched(plan: dict[str, Any]) -> int:
    """Rows every node of an EXPLAIN ANALYZE plan produced or filtered away, over all its loops."""
    loops = plan.get("Actual Loops", 1)
    rows = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
            + plan.get("Rows Removed by Index Recheck", 0)) * loops
    return rows + sum(_touched(child) for child in plan.get("Plans", []))


def test_deleting_generated_activations_is_linear_in_the_rows(alice: Any) -> None:
    model = factories.make_model()
    source, other = factories.make_source(model, layer=1), factories.make_source(model, layer=2)
    ids = _generate(source, FEATURES, PER_FEATURE)
    _generate(other, 200, 100)
    factories.make_activation(Feature.objects.get(id=ids[0]), ["mine"], [1.0], creator=alice)
    total = Activation.objects.count()
    assert Activation.objects.filter(feature__source=source, creator=None).count() == FEATURES * PER_FEATURE

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + DELETE_GENERATED_SQL, [ids])
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    touched = _touched(plan[0]["Plan"])
    assert touched <= 3 * total, f"the plan touched {touched} rows for a {total}-row table"
    assert "Nested Loop" not in json.dumps(plan)
    assert Activation.objects.filter(feature__source=source, creator=None).count() == 0  # ANALYZE ran it


def test_only_the_sources_generated_rows_go(alice: Any) -> None:
    model = factories.make_model()
    source, other = factories.make_source(model, layer=1), factories.make_source(model, layer=2)
    ids = _generate(source, 10, 5)
    _generate(other, 3, 5)
    factories.make_activation(Feature.objects.get(id=ids[0]), ["mine"], [1.0], creator=alice)
    assert delete_generated_activations(source) == 50
    assert Activation.objects.filter(feature__source=source).count() == 1
    assert Activation.objects.filter(feature__source=other).count() == 15
    assert delete_generated_activations(factories.make_source(model, layer=3)) == 0


def test_the_old_orm_delete_is_what_this_bound_catches(alice: Any) -> None:
    """The bound is meaningful: the ORM's join-subquery delete (what dashboards.py used to run) touches far
    more rows than the table holds when PostgreSQL has no statistics. Kept to 3k rows: the old plan is
    quadratic (20k rows took minutes on a loaded 2-core machine)."""
    model = factories.make_model()
    source = factories.make_source(model, layer=1)
    _generate(source, 50, 60)
    total = Activation.objects.count()
    old = Activation.objects.filter(feature__source=source, creator__isnull=True)
    sql, params = old.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) DELETE FROM {Activation._meta.db_table} "
                       f"WHERE id IN ({sql})", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    if "Nested Loop" not in json.dumps(plan):  # the table has statistics from earlier runs
        pytest.skip("PostgreSQL planned the old query without a nested loop this time")
    assert _touched(plan[0]["Plan"]) > 10 * total
