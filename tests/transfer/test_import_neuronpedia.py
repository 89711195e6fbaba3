"""Import of files as Neuronpedia's own exporter and SAEDashboard converter write them (string embeddings,
batches ordered by the text column `index`, nulls, config and inference host files), a multi-batch source,
every field compared; a second import changes nothing; a bad file changes nothing."""

from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from features.models import Activation, EvalType, Explanation, Feature, ImportedFile, Model, Source
from neuronpedia.jobs.models import Job
from neuronpedia.lib.jobs import JobStatus
from tests.transfer.np_format import (
    assert_batch_rows_stored,
    assert_config_stored,
    assert_metadata_stored,
    read_jsonl,
    write_converter_export,
)
from transfer import services as transfer_services
from transfer.importer.pipeline import import_config
from transfer.importer.storage import LocalStore
from transfer.importer.synthetic import SyntheticSpec, write_source
from transfer.tasks import import_source_task

pytestmark = pytest.mark.django_db
# > 2,048 features: three feature files of 1,024 whose index ranges overlap (text order)
BIG = SyntheticSpec(num_features=2100, acts_per_feature=2, context=6, private_activations=1)


@pytest.fixture(scope="module")
def big_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("np-export")
    write_source(root, BIG)
    return root


def run_import(base: Path, model: str = "gpt2-small", source: str = "6-res-jb", **kwargs: Any) -> Job:
    job = transfer_services.start_import(model_id=model, sources=[source], base=str(base), **kwargs)
    with contextlib.suppress(Exception):  # the job row holds the error
        import_source_task(job.id)
    job.refresh_from_db()
    return job


def test_exporter_files_overlap_in_index_ranges(big_export: Path) -> None:
    folder = big_export / "gpt2-small/6-res-jb"
    first = [int(r["index"]) for r in read_jsonl(folder / "features/batch-0.jsonl.gz")]
    assert first[:5] == [0, 1, 10, 100, 1000]
    assert max(first) == 1919
    second = [int(r["index"]) for r in read_jsonl(folder / "features/batch-1.jsonl.gz")]
    assert min(second) < max(first)
    row = read_jsonl(folder / "explanations/batch-0.jsonl.gz")[0]
    assert isinstance(row["embedding"], str)
    assert row["embedding"].startswith("[")
    assert "creatorId" in read_jsonl(folder / "activations/batch-0.jsonl.gz")[0]


def test_neuronpedia_export_imports_with_every_field_equal(big_export: Path) -> None:
    import_config(LocalStore(big_export))
    job = run_import(big_export)
    assert job.status == JobStatus.DONE, job.error
    result = job.result["sources"]["6-res-jb"]
    assert result["ok"] is True, result
    folder = big_export / "gpt2-small/6-res-jb"
    counts = assert_batch_rows_stored(folder, "gpt2-small", "6-res-jb")
    assert counts == BIG.counts  # private activations were not exported
    assert_metadata_stored(folder, "gpt2-small", "6-res-jb")
    assert_config_stored(big_export)
    assert EvalType.objects.get(name="core").output_schema["type"] == "object"
    feature = Feature.objects.get(source__name="6-res-jb", index=7)  # a row with null arrays
    assert (feature.neuron_alignment_indices, feature.decoder_weights_dist, feature.vector_label) == (
        None,
        None,
        None,
    )
    assert Activation.objects.filter(data_source=None).exists()
    assert (
        Activation.objects.filter(creator_external_id="clkht01d40000jv08hvalcvly").count()
        == counts["activations"]
    )
    assert not Source.objects.filter(name__endswith=".staging").exists()


def test_second_import_is_a_noop(big_export: Path) -> None:
    assert run_import(big_export).status == JobStatus.DONE

    def state() -> tuple:
        return (
            sorted(Feature.objects.values_list("id", "index")),
            sorted(Activation.objects.values_list("id", flat=True)),
            sorted(Explanation.objects.values_list("id", flat=True)),
            sorted(ImportedFile.objects.values_list("path", "staged", "updated_at")),
        )

    before = state()
    job = run_import(big_export)
    assert job.status == JobStatus.DONE, job.error
    assert job.result["sources"]["6-res-jb"]["files"]["imported"] == 0
    assert state() == before


def test_converter_output_with_null_dimension_imports(tmp_path: Path) -> None:
    folder = write_converter_export(tmp_path)
    job = run_import(tmp_path, model="gemma-2-2b", source="12-gemmascope-res-16k")
    assert job.status == JobStatus.DONE, job.error
    model = Model.objects.get(id="gemma-2-2b")
    assert (model.dimension, model.layers) == (None, 0)
    assert assert_batch_rows_stored(folder, "gemma-2-2b", "12-gemmascope-res-16k") == {
        "features": 6,
        "activations": 12,
        "explanations": 0,
    }
    assert_metadata_stored(folder, "gemma-2-2b", "12-gemmascope-res-16k")


def _rewrite(path: Path, edit) -> None:
    rows = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in edit(rows)).encode()))


def test_a_bad_file_leaves_the_previous_source_intact(tmp_path: Path) -> None:
    spec = SyntheticSpec(num_features=40, acts_per_feature=2, context=4, batch_size=16)
    folder = write_source(tmp_path, spec)
    assert run_import(tmp_path).status == JobStatus.DONE
    before = sorted(Feature.objects.filter(source__name="6-res-jb").values_list("index", "max_act_approx"))
    acts = Activation.objects.filter(feature__source__name="6-res-jb").count()

    def bump(rows: list[dict]) -> list[dict]:
        return [{**r, "maxActApprox": 99.0} for r in rows]

    def corrupt(rows: list[dict]) -> list[dict]:
        rows[2]["embedding"] = "not a vector"
        return rows

    _rewrite(folder / "features/batch-0.jsonl.gz", bump)
    _rewrite(folder / "explanations/batch-2.jsonl.gz", corrupt)
    job = run_import(tmp_path)
    assert job.status == JobStatus.FAILED
    assert "explanations/batch-2.jsonl.gz line 3" in job.error
    assert "'embedding'" in job.error
    after = sorted(Feature.objects.filter(source__name="6-res-jb").values_list("index", "max_act_approx"))
    assert after == before
    assert Activation.objects.filter(feature__source__name="6-res-jb").count() == acts
    # fixed file: the import resumes from the staged files and swaps
    _rewrite(folder / "explanations/batch-2.jsonl.gz", lambda rows: [{**r, "embedding": None} for r in rows])
    job = run_import(tmp_path)
    assert job.status == JobStatus.DONE, job.error
    assert set(Feature.objects.filter(source__name="6-res-jb").values_list("max_act_approx", flat=True)) >= {
        99.0
    }
    assert_batch_rows_stored(folder, "gpt2-small", "6-res-jb")


def test_nul_characters_become_spaces_as_in_neuronpedias_import(tmp_path: Path) -> None:
    """Its importJsonlString replaces every \\u0000 of a batch file with a space (PostgreSQL text holds no
    NUL); SAEDashboard output, through its converter, carries them in tokens."""
    folder = write_source(tmp_path, SyntheticSpec(num_features=4, acts_per_feature=1, context=4))
    _rewrite(folder / "activations/batch-0.jsonl.gz",
             lambda rows: [{**r, "tokens": ["a\x00b", *r["tokens"][1:]]} for r in rows])
    _rewrite(folder / "explanations/batch-0.jsonl.gz",
             lambda rows: [{**r, "description": "x\x00"} for r in rows])
    assert run_import(tmp_path).status == JobStatus.DONE
    assert {a.tokens[0] for a in Activation.objects.filter(feature__source__name="6-res-jb")} == {"a b"}
    assert set(Explanation.objects.filter(feature__source__name="6-res-jb")
               .values_list("description", flat=True)) == {"x "}


def test_a_left_out_key_takes_neuronpedias_column_default_and_a_null_stays_null(tmp_path: Path) -> None:
    """What Neuronpedia's import stores (INSERT of the first line's keys): the converter writes
    `"zIndices": null` and no zKIndices (stored as []); a null written out stays NULL."""
    folder = write_source(tmp_path, SyntheticSpec(num_features=4, acts_per_feature=1, context=4))

    def edit(rows: list[dict]) -> list[dict]:
        return [{**{k: v for k, v in r.items() if k != "dfaValues"}, "zIndices": None, "lossValues": None}
                for r in rows]

    _rewrite(folder / "activations/batch-0.jsonl.gz", edit)
    assert run_import(tmp_path).status == JobStatus.DONE
    rows = Activation.objects.filter(feature__source__name="6-res-jb")
    stored = {(tuple(a.z_k_indices), tuple(a.z_q_indices), tuple(a.dfa_values), a.loss_values) for a in rows}
    assert stored == {((), (), (), None)}


def test_the_feature_api_shows_neuronpedia_ids_of_imported_rows(tmp_path: Path, client) -> None:
    write_source(tmp_path, SyntheticSpec(num_features=12, acts_per_feature=2, context=4, batch_size=8))
    assert run_import(tmp_path).status == JobStatus.DONE
    body = client.get("/api/feature/gpt2-small/6-res-jb/3").json()
    assert body["creatorId"] == "clkht01d40000jv08hvalcvly"
    assert {a["id"] for a in body["activations"]} <= {"cl06a0000003x000", "cl06a0000003x001"}
    assert all(a["creatorId"] == "clkht01d40000jv08hvalcvly" for a in body["activations"])
    assert [(e["id"], e["authorId"]) for e in body["explanations"]] == [
        ("cl06e0000003x00", "clkht01d40000jv08hvalcvly")]
    assert body["correlated_features_l1"] is None  # never in their export (its default [] there)
