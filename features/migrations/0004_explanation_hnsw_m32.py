"""Rebuild the explanation embedding indexes with denser graphs (m = 32, ef_construction = 128): see
features/hnsw.py for why. On a large table this migration takes a while (about as long as the
importer's rebuild after a bulk load); searches fall back to a sequential scan until it commits.
"""

from django.db import migrations

from features.embedders_registry import EMBEDDERS
from features.hnsw import create_index_sql, drop_index_sql


def _rebuild_sql(**params: int) -> list[str]:
    sql = ["SELECT set_config('maintenance_work_mem', '512MB', true) "  # raised for the build, never lowered
           "WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes('512MB')"]
    for spec in EMBEDDERS.values():
        sql += [drop_index_sql(spec), create_index_sql(spec, **params)]
    return sql


def _create_sql() -> list[str]:
    return [create_index_sql(spec) for spec in EMBEDDERS.values()]


class Migration(migrations.Migration):
    dependencies = [("features", "0003_imported_file")]
    operations = [migrations.RunSQL(_rebuild_sql(), _rebuild_sql(m=16, ef_construction=64))]
