"""One partial HNSW (cosine) index per known embedder, on `embedding::vector(d)`.

The embedding column is an untyped `vector` because embedders differ in width; queries cast the column
the same way (features/selectors.py) so the planner can use these indexes.
"""

from django.db import migrations

from features.embedders_registry import EMBEDDERS


def _create_sql() -> list[str]:
    return [
        f'CREATE INDEX IF NOT EXISTS {spec.index_name} ON features_explanation USING hnsw '
        f"((embedding::vector({spec.dimensions})) vector_cosine_ops) "
        f"WITH (m = 16, ef_construction = 64) WHERE embedder = '{spec.name}'"
        for spec in EMBEDDERS.values()
    ]


def _drop_sql() -> list[str]:
    return [f"DROP INDEX IF EXISTS {spec.index_name}" for spec in EMBEDDERS.values()]


class Migration(migrations.Migration):
    dependencies = [("features", "0001_initial")]
    operations = [migrations.RunSQL(_create_sql(), _drop_sql())]
