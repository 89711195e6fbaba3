"""Import of Neuronpedia's export layout: rows, checkpoints, re-import, changed files, bad input, search."""

from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, VectorField

from features.embedders_registry import OPENAI_3_LARGE_256
from features.models import (
    Activation,
    Explanation,
    ExplanationType,
    Feature,
    ImportedFile,
    Model,
    Source,
)
from neuronpedia.jobs.models import Job
from neuronpedia.lib.jobs import JobStatus
from transfer import services as transfer_services
from transfer.importer.synthetic import SyntheticSpec, write_source
from transfer.tasks import import_source_task

pytestmark = pytest.mark.django_db
SPEC = SyntheticSpec(num_features=12, acts_per_feature=3, context=8, batch_size=4)


@pytest.fixture
def export_root(tmp_path: Path) -> Path:
    write_source(tmp_path, SPEC)
    return tmp_path


def run_import(base: Path | str, sources: tuple[str, ...] = ("6-res-jb",), **kwargs: Any) -> Job:
    job = transfer_services.start_import(model_id="gpt2-small", sources=list(sources), base=str(base),
                                         **kwargs)
    with contextlib.suppress(Exception):  # the job row holds the error
        import_source_task(job.id)
    job.refresh_from_db()
    return job


def rewrite(path: Path, edit) -> None:
    rows = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    rows = edit(rows)
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))


def snapshot() -> dict[str, list]:
    return {
        "features": list(Feature.objects.order_by("index").values_list("index", "max_act_approx", "pos_str")),
        "activations": sorted(Activation.objects.values_list("external_id", "max_value", "tokens")),
        "explanations": sorted(Explanation.objects.values_list("external_id", "description")),
    }


def test_import_source_loads_every_row_and_records_the_verification(export_root: Path) -> None:
    job = run_import(export_root)
    assert job.status == JobStatus.DONE, job.error
    result = job.result["sources"]["6-res-jb"]
    assert result["ok"] is True
    assert {k: v["imported"] for k, v in result["tables"].items()} == SPEC.counts
    assert {k: v["expected"] for k, v in result["tables"].items()} == SPEC.counts
    assert (job.done, job.total) == (11, 11)  # metadata + 3 features + 3 activations + 3 explanations + swap
    source = Source.objects.get(model_id="gpt2-small", name="6-res-jb")
    assert (source.num_features, source.layer, source.source_set.release_id) == (12, 6, "res-jb")
    assert Model.objects.get(id="gpt2-small").dimension == 768
    activation = Activation.objects.get(external_id="cl06a0000005x000")
    assert (activation.feature.index, len(activation.tokens), activation.data_source) == (
        5, 8, "Skylion007/openwebtext")
    assert ExplanationType.objects.filter(name="oai_token-act-pair").exists()
    assert ImportedFile.objects.filter(source=source, status="DONE").count() == 15  # + 2 inference host files


def test_reimport_of_a_finished_source_is_a_noop(export_root: Path) -> None:
    run_import(export_root)
    ids = sorted(Activation.objects.values_list("id", flat=True))
    job = run_import(export_root)
    assert job.status == JobStatus.DONE
    assert job.result["sources"]["6-res-jb"]["files"] == {"total": 9, "imported": 0, "skipped": 9}
    assert sorted(Activation.objects.values_list("id", flat=True)) == ids


def test_a_changed_file_is_reimported_and_replaces_its_rows(export_root: Path) -> None:
    run_import(export_root)
    folder = export_root / "gpt2-small" / "6-res-jb"
    rewrite(folder / "activations" / "batch-1.jsonl.gz",
            lambda rows: [{**r, "maxValue": 99.0} for r in rows if not r["id"].endswith("x000")])
    rewrite(folder / "explanations" / "batch-0.jsonl.gz",
            lambda rows: [{**r, "description": "changed"} for r in rows[1:]])
    job = run_import(export_root)
    assert job.status == JobStatus.DONE, job.error
    assert job.result["sources"]["6-res-jb"]["files"]["imported"] == 9  # a changed source is staged again
    assert job.result["sources"]["6-res-jb"]["ok"] is True
    assert Activation.objects.count() == 36 - 4
    assert Activation.objects.filter(max_value=99.0).count() == 8
    assert Explanation.objects.count() == 11
    assert Explanation.objects.filter(description="changed").count() == 3


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-40])


def _edit_line(line_no: int, edit):
    def apply(path: Path) -> None:
        rewrite(path, lambda rows: [edit(r) if i == line_no - 1 else r for i, r in enumerate(rows)])
    return apply


def _bad_json_on_line_2(path: Path) -> None:
    lines = gzip.decompress(path.read_bytes()).splitlines()
    lines[1] = lines[1][:-5]
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))


@pytest.mark.parametrize(("breakage", "message"), [
    (_truncate, "activations/batch-1.jsonl.gz: truncated or corrupt gzip data"),
    (_bad_json_on_line_2, "activations/batch-1.jsonl.gz line 2: invalid JSON"),
    (_edit_line(3, lambda r: {**r, "maxValue": "high"}),
     "activations/batch-1.jsonl.gz line 3: key 'maxValue' must be a number, got str 'high'"),
    (_edit_line(2, lambda r: {**r, "index": "70000"}),
     "activations/batch-1.jsonl.gz line 2: feature index 70000 is outside source 6-res-jb (num_features=12)"),
    (_edit_line(4, lambda r: {k: v for k, v in r.items() if k != "tokens"}),
     "activations/batch-1.jsonl.gz line 4: missing required key 'tokens'"),
])
def test_bad_input_fails_the_file_naming_file_and_line_and_imports_nothing_of_the_source(
        export_root: Path, breakage, message: str) -> None:
    breakage(export_root / "gpt2-small" / "6-res-jb" / "activations" / "batch-1.jsonl.gz")
    job = run_import(export_root)
    assert job.status == JobStatus.FAILED
    assert message in job.error
    assert not Source.objects.filter(name="6-res-jb").exists()  # no half-imported source
    staging = Source.objects.get(name="6-res-jb.staging")  # what was loaded waits there for a resume
    assert Feature.objects.filter(source=staging).count() == 12
    assert Activation.objects.filter(feature__index__lt=4).count() == 12  # activations/batch-0 staged
    assert not Activation.objects.filter(feature__index__range=(4, 7)).exists()  # nothing of the bad file
    failed = ImportedFile.objects.get(path="gpt2-small/6-res-jb/activations/batch-1.jsonl.gz")
    assert (failed.status, message in failed.error) == ("FAILED", True)


def test_a_fixed_file_resumes_a_failed_import(export_root: Path) -> None:
    path = export_root / "gpt2-small" / "6-res-jb" / "explanations" / "batch-2.jsonl.gz"
    good = path.read_bytes()
    _truncate(path)
    job = run_import(export_root)
    assert job.status == JobStatus.FAILED
    path.write_bytes(good)
    assert transfer_services.resume_job(job_id=job.id) is True
    import_source_task(job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert job.result["sources"]["6-res-jb"]["files"] == {"total": 9, "imported": 1, "skipped": 8}


def test_unknown_extra_keys_are_ignored(export_root: Path) -> None:
    rewrite(export_root / "gpt2-small" / "6-res-jb" / "features" / "batch-0.jsonl.gz",
            lambda rows: [{**r, "brandNewColumn": {"x": 1}, "correlated_features_indices": [1]}
                          for r in rows])
    assert run_import(export_root).status == JobStatus.DONE
    assert Feature.objects.count() == 12


def test_imported_embeddings_are_searchable_through_the_hnsw_index(export_root: Path) -> None:
    run_import(export_root)
    target = Explanation.objects.get(external_id="cl06e0000007x00")
    assert target.embedder == OPENAI_3_LARGE_256.name
    query = np.asarray(target.embedding) + 0.01
    nearest = (Explanation.objects.filter(embedder=OPENAI_3_LARGE_256.name)
               .annotate(distance=CosineDistance(Cast("embedding", VectorField(dimensions=256)),
                                                 query.tolist()))
               .order_by("distance")[:3])
    assert nearest[0].external_id == "cl06e0000007x00"
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        sql, params = nearest.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert OPENAI_3_LARGE_256.index_name in plan


def test_config_catalogs_are_imported_once(export_root: Path) -> None:
    job = transfer_services.start_config_import(base=str(export_root))
    import_source_task(job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    assert job.result["config"]["explanation_type.jsonl"] == 1
    assert ExplanationType.objects.get(name="oai_token-act-pair").display_name.startswith("OpenAI")
    again = transfer_services.start_config_import(base=str(export_root))
    import_source_task(again.id)
    again.refresh_from_db()
    assert again.result["config"]["explanation_type.jsonl"] is None  # unchanged: skipped


def test_a_missing_source_fails_with_a_clear_message(export_root: Path) -> None:
    job = run_import(export_root, sources=("9-res-jb",))
    assert job.status == JobStatus.FAILED
    assert "no source gpt2-small/9-res-jb" in job.error
