"""One partial HNSW (cosine) index per known embedder, on `embedding::vector(d)`.

The embedding column is an untyped `vector` because embedders differ in width; queries cast the column
the same way (features/selectors.py) so the planner can use these indexes. The SQL lives in
features/hnsw.py, shared with the importer (which rebuilds an index after a bulk load).
"""

from django.db import migrations

from features.embedders_registry import EMBEDDERS
from features.hnsw import create_index_sql, drop_index_sql


def _create_sql() -> list[str]:
    """As first shipped: pgvector's default graph parameters (0004 rebuilds with denser graphs)."""
    return [create_index_sql(spec, m=16, ef_construction=64) for spec in EMBEDDERS.values()]


def _drop_sql() -> list[str]:
    return [drop_index_sql(spec) for spec in EMBEDDERS.values()]


class Migration(migrations.Migration):
    dependencies = [("features", "0001_initial")]
    operations = [migrations.RunSQL(_create_sql(), _drop_sql())]
