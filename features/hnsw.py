"""The partial HNSW indexes on explanation embeddings (one per embedder, migrations 0002 and 0004), and how
an import keeps them out of a bulk load.

Inserting into an HNSW index costs milliseconds per row (a graph search per insert, through the buffer
manager and the WAL); building it once from the finished table costs a fraction of that. So when an import
is about to load many explanation rows compared with those already indexed (`worth_rebuilding`), the
importer drops the index before its first explanation file and rebuilds it once at the end (more
`maintenance_work_mem`, parallel workers). Searches stay correct meanwhile (sequential scan). The rebuild
runs in a `finally`; an import killed before it leaves the index missing, and the next import of any
source re-creates it (`IndexPlan.start`). The SQL is the migration's own (`create_index_sql`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db import DatabaseError, connection, transaction

from features.embedders_registry import EMBEDDERS, EmbedderSpec

log = logging.getLogger(__name__)

TABLE = "features_explanation"
MIN_BULK_ROWS = 2_000  # below this, inserting through the index is cheap: keep it
BUILD_MEMORY = "512MB"  # maintenance_work_mem for a rebuild (raised to this, never lowered)
BUILD_WORKERS = 2  # max_parallel_maintenance_workers for a rebuild (raised to this, never lowered)
DROP_LOCK_TIMEOUT = "10s"  # DROP INDEX needs an exclusive lock: give up (keep the index) rather than wait


# Graph parameters (migration 0004; 0002 had pgvector's defaults, m = 16 / ef_construction = 64). Explanation
# embeddings form many topical clusters; with 16 links per node, too few of them cross between clusters and
# a search that starts in the wrong cluster can miss its own cluster entirely (recall@20 of 0 for ~3% of
# queries on 200k clustered vectors, at any ef_search). 32 links / 128 candidates fixed it: recall 0.995 at
# ef_search 100, for 2.6x the build time (bench/explanation_search_bench.py has the 1M figures).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128


def create_index_sql(spec: EmbedderSpec, *, m: int = HNSW_M,
                     ef_construction: int = HNSW_EF_CONSTRUCTION) -> str:
    """The index of one embedder, exactly as the latest migration (0004) creates it."""
    return (f'CREATE INDEX IF NOT EXISTS {spec.index_name} ON {TABLE} USING hnsw '
            f"((embedding::vector({spec.dimensions})) vector_cosine_ops) "
            f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)}) WHERE embedder = '{spec.name}'")


def drop_index_sql(spec: EmbedderSpec) -> str:
    return f"DROP INDEX IF EXISTS {spec.index_name}"


def present_indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                       "AND tablename = %s", [TABLE])
        return {row[0] for row in cursor.fetchall()}


def indexed_rows(spec: EmbedderSpec) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE embedder = %s", [spec.name])  # noqa: S608
        return int(cursor.fetchone()[0])


def worth_rebuilding(new_rows: int, indexed: int) -> bool:
    """Drop + one rebuild beats inserting through the index when the load is large, and large compared
    with what is already indexed (the rebuild re-indexes those too)."""
    return new_rows >= MIN_BULK_ROWS and new_rows >= indexed / 2


def build_index(spec: EmbedderSpec) -> float:
    """CREATE INDEX IF NOT EXISTS with build-sized settings (transaction-local); returns seconds."""
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('maintenance_work_mem', %s, true) "
                       "WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes(%s)",
                       [BUILD_MEMORY, BUILD_MEMORY])
        cursor.execute("SELECT set_config('max_parallel_maintenance_workers', %s, true) "
                       "WHERE current_setting('max_parallel_maintenance_workers')::int < %s",
                       [str(BUILD_WORKERS), BUILD_WORKERS])
        cursor.execute(create_index_sql(spec))
    return time.monotonic() - started


def drop_index(spec: EmbedderSpec) -> bool:
    """DROP INDEX, unless its lock is not granted within DROP_LOCK_TIMEOUT (busy table: keep it)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
                           [DROP_LOCK_TIMEOUT])
            previous = cursor.fetchone()[0]
            cursor.execute(drop_index_sql(spec))
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    except DatabaseError as exc:
        log.warning("keeping index %s during the import (could not drop it: %s)", spec.index_name, exc)
        return False
    return True


@dataclass
class IndexPlan:
    """Per import: which embedder indexes to take out of the explanation files' load, and to restore."""

    pending_files: int  # explanation files this import will probably load
    owed: set[str] = field(default_factory=set)  # embedders whose index is absent and must be built
    decided: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    # Only when every file commits on its own: inside a caller's transaction, CREATE INDEX would meet
    # the rows' pending (deferred) FK trigger events, and nothing would be gained anyway.
    bulk: bool = field(default_factory=lambda: not connection.in_atomic_block)

    def _build(self, spec: EmbedderSpec) -> None:
        self.seconds[spec.index_name] = round(self.seconds.get(spec.index_name, 0) + build_index(spec), 2)
        self.owed.discard(spec.name)

    def start(self) -> None:
        """Re-create any index a killed import left missing: now, or — when this import has explanation
        files to load — once `before_explanations` knows whether to build it before or after them."""
        present = present_indexes()
        for spec in EMBEDDERS.values():
            if spec.index_name not in present:
                self.owed.add(spec.name)
                if not (self.pending_files and self.bulk):
                    self._build(spec)

    def before_explanations(self, rows_per_file: Mapping[str, int]) -> None:
        """Before the first explanation file really loaded; `rows_per_file`: embedded rows per embedder
        in that file, taken as typical of the pending files. Drops (or leaves out) the indexes worth
        rebuilding; builds now the missing ones that are not."""
        if self.decided:
            return
        self.decided = True
        present = present_indexes()
        for spec in EMBEDDERS.values():
            new_rows = rows_per_file.get(spec.name, 0) * self.pending_files
            worth = self.bulk and worth_rebuilding(new_rows, indexed_rows(spec))
            if spec.index_name not in present:
                if not worth:
                    self._build(spec)
            elif worth and drop_index(spec):
                self.owed.add(spec.name)

    def finish(self) -> None:
        """Build every index this import owes (also after a failure: runs in a `finally`)."""
        present = present_indexes() if self.owed else set()
        for name in sorted(self.owed):
            if EMBEDDERS[name].index_name in present:  # another import built it meanwhile
                self.owed.discard(name)
            else:
                self._build(EMBEDDERS[name])
