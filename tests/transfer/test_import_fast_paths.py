"""The import's fast paths keep its results exact: the batch COPY encoders, the HNSW index dropped before a
bulk load and rebuilt once (and re-created after a killed import), and the FK checks done per feature."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import connection

from features import hnsw
from features.embedders_registry import EMBEDDERS, OPENAI_3_LARGE_256
from features.models import Activation, Explanation, Feature
from neuronpedia.jobs.models import Job
from neuronpedia.lib.jobs import JobStatus
from transfer import services as transfer_services
from transfer.importer import copy as copy_format
from transfer.importer.errors import ImportFileError
from transfer.importer.loader import SourceContext, _lock_features
from transfer.importer.synthetic import SyntheticSpec, write_source
from transfer.tasks import import_source_task

SPEC = SyntheticSpec(num_features=12, acts_per_feature=3, context=8, batch_size=4)
MIGRATION_SQL = (
    "CREATE INDEX IF NOT EXISTS explanation_emb_oai256_hnsw ON features_explanation USING hnsw "
    "((embedding::vector(256)) vector_cosine_ops) WITH (m = 32, ef_construction = 128) "
    "WHERE embedder = 'text-embedding-3-large-256'")


def run_import(base: Path) -> Job:
    job = transfer_services.start_import(model_id="gpt2-small", sources=["6-res-jb"], base=str(base))
    with contextlib.suppress(Exception):
        import_source_task(job.id)
    job.refresh_from_db()
    return job


def index_definitions() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'features_explanation' "
                       "AND indexname = ANY(%s)", [[s.index_name for s in EMBEDDERS.values()]])
        return dict(cursor.fetchall())


@pytest.fixture
def indexes_restored() -> Iterator[None]:
    """transaction=True tests really drop indexes: make sure the next test finds them."""
    yield
    with connection.cursor() as cursor:
        for spec in EMBEDDERS.values():
            cursor.execute(hnsw.create_index_sql(spec))


def _random_value(rng: random.Random, column_type: str) -> Any:
    words = ["a", "", "é", "日本", "\n", "x" * 40, "\\", '"', "tok"]
    if rng.random() < 0.15:
        return None
    return {
        "int8": lambda: rng.randint(-2**63, 2**63 - 1), "int4": lambda: rng.randint(-2**31, 2**31 - 1),
        "int2": lambda: rng.randint(-9, 9), "float4": lambda: rng.random(),
        "float8": lambda: rng.random() * 1e300,
        "bool": lambda: rng.random() < 0.5, "text": lambda: rng.choice(words) * rng.randint(0, 3),
        "jsonb": lambda: {"a": [1, 2]},
        "timestamptz": lambda: datetime(2024, 1, rng.randint(1, 3), tzinfo=UTC),
        "vector": lambda: b"\x00\x02\x00\x00" + bytes(8),
        "float4[]": lambda: (np.asarray([rng.random() for _ in range(rng.choice([0, 1, 5]))])
                             if rng.random() < 0.5 else [rng.randint(0, 9) for _ in range(3)]),
        "int4[]": lambda: [rng.randint(-9, 9) for _ in range(rng.choice([0, 1, 4]))],
        "text[]": lambda: [rng.choice(words) for _ in range(rng.choice([0, 1, 7]))],
    }[column_type]()


def test_batch_encoders_write_the_same_bytes_as_the_value_encoders() -> None:
    rng = random.Random(7)
    types = sorted(copy_format.ENCODERS)
    for _ in range(200):
        row_types = [rng.choice(types) for _ in range(rng.randint(1, 6))]
        rows = [[_random_value(rng, t) for t in row_types] for _ in range(rng.randint(1, 30))]
        expected = b"".join(
            copy_format._h.pack(len(row_types)) + b"".join(
                copy_format.NULL if v is None else
                copy_format._i.pack(len(data := copy_format.ENCODERS[t](v))) + data
                for t, v in zip(row_types, row, strict=True))
            for row in rows)
        encoders = [copy_format.column_encoder(t) for t in row_types]
        assert copy_format.encode_rows(encoders, rows) == expected, (row_types, rows)


def test_the_migration_and_the_importer_share_the_index_sql() -> None:
    assert hnsw.create_index_sql(OPENAI_3_LARGE_256) == MIGRATION_SQL
    migration = __import__("features.migrations.0004_explanation_hnsw_m32", fromlist=["_create_sql"])
    assert migration._create_sql() == [hnsw.create_index_sql(s) for s in EMBEDDERS.values()]


def test_worth_rebuilding_needs_a_large_load_relative_to_the_indexed_rows() -> None:
    assert hnsw.worth_rebuilding(24_576, 0)
    assert hnsw.worth_rebuilding(24_576, 49_152)
    assert not hnsw.worth_rebuilding(24_576, 49_153)
    assert not hnsw.worth_rebuilding(hnsw.MIN_BULK_ROWS - 1, 0)


@pytest.mark.django_db(transaction=True)
def test_a_bulk_load_drops_and_rebuilds_the_index_identically(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, indexes_restored: None) -> None:
    before = index_definitions()
    monkeypatch.setattr(hnsw, "MIN_BULK_ROWS", 1)
    dropped: list[str] = []
    real_drop = hnsw.drop_index
    monkeypatch.setattr(hnsw, "drop_index", lambda spec: dropped.append(spec.index_name) or real_drop(spec))
    write_source(tmp_path, SPEC)
    job = run_import(tmp_path)
    assert job.status == JobStatus.DONE, job.error
    result = job.result["sources"]["6-res-jb"]
    assert result["ok"] is True
    assert OPENAI_3_LARGE_256.index_name in dropped
    assert OPENAI_3_LARGE_256.index_name in result["index_seconds"]
    assert index_definitions() == before  # rebuilt, same definition
    assert Explanation.objects.filter(embedder=OPENAI_3_LARGE_256.name).count() == 12


@pytest.mark.django_db(transaction=True)
def test_an_index_left_missing_by_a_killed_import_is_recreated_by_the_next_import(
        tmp_path: Path, indexes_restored: None) -> None:
    before = index_definitions()
    write_source(tmp_path, SPEC)
    assert run_import(tmp_path).status == JobStatus.DONE
    with connection.cursor() as cursor:  # what a SIGKILL between the drop and the rebuild leaves
        cursor.execute(hnsw.drop_index_sql(OPENAI_3_LARGE_256))
    job = run_import(tmp_path)  # nothing to load: a no-op, which still restores the index
    assert job.status == JobStatus.DONE, job.error
    assert job.result["sources"]["6-res-jb"]["files"]["imported"] == 0
    assert index_definitions() == before


@pytest.mark.django_db(transaction=True)
def test_a_failed_bulk_load_still_rebuilds_the_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, indexes_restored: None) -> None:
    before = index_definitions()
    monkeypatch.setattr(hnsw, "MIN_BULK_ROWS", 1)
    write_source(tmp_path, SPEC)
    bad = tmp_path / "gpt2-small" / "6-res-jb" / "explanations" / "batch-2.jsonl.gz"
    bad.write_bytes(bad.read_bytes()[:-40])
    job = run_import(tmp_path)
    assert job.status == JobStatus.FAILED
    assert "explanations/batch-2.jsonl.gz: truncated" in job.error
    assert Explanation.objects.count() == 8
    assert index_definitions() == before


@pytest.mark.django_db
def test_activations_load_the_same_without_skipping_fk_triggers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_source(tmp_path, SPEC)
    monkeypatch.setattr(SourceContext, "can_skip_triggers", lambda self: False)
    job = run_import(tmp_path)
    assert job.status == JobStatus.DONE, job.error
    assert Activation.objects.count() == 36
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"


@pytest.mark.django_db
def test_skipping_fk_triggers_is_undone_and_checked_per_feature(tmp_path: Path) -> None:
    write_source(tmp_path, SPEC)
    assert run_import(tmp_path).status == JobStatus.DONE
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"  # put back after each COPY
    existing = set(Feature.objects.values_list("id", flat=True)[:3])
    _lock_features("x.jsonl.gz", existing)
    with pytest.raises(ImportFileError, match="1 of its features were deleted"):
        _lock_features("x.jsonl.gz", existing | {max(existing) + 10_000})
