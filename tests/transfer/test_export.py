"""Export in Neuronpedia's layout, and export -> import into an empty database reproduces the rows."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Model as DjangoModel

from features.models import (
    Activation,
    Explanation,
    ExplanationType,
    Feature,
    ImportedFile,
    Model,
    Source,
    SourceRelease,
)
from neuronpedia.lib.jobs import JobStatus
from transfer import services as transfer_services
from transfer.importer.synthetic import SyntheticSpec, write_source
from transfer.tasks import export_source_task, import_source_task

pytestmark = pytest.mark.django_db
SPEC = SyntheticSpec(num_features=10, acts_per_feature=2, context=6, batch_size=4, explanations_per_feature=2)
SKIP = {"id", "created_at", "updated_at", "feature", "source", "source_set", "model", "creator"}


def _rows(model: type[DjangoModel], order: tuple[str, ...], **scope: str) -> list[dict]:
    rows = []
    for obj in model.objects.filter(**scope).order_by(*order):
        row = {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields
               if f.name not in SKIP and f.attname not in {"feature_id", "source_id", "source_set_id"}}
        if "embedding" in row and row["embedding"] is not None:
            row["embedding"] = [float(v) for v in row["embedding"]]
        rows.append(row)
    return rows


def _everything() -> dict[str, list[dict]]:
    return {
        "sources": _rows(Source, ("name",), model_id="gpt2-small"),
        "models": _rows(Model, ("id",), id="gpt2-small"),
        "releases": _rows(SourceRelease, ("name",), name="res-jb"),
        "types": _rows(ExplanationType, ("name",), name="oai_token-act-pair"),
        "features": _rows(Feature, ("index",), source__model_id="gpt2-small"),
        "activations": _rows(Activation, ("external_id",), feature__source__model_id="gpt2-small"),
        "explanations": _rows(Explanation, ("external_id",), feature__source__model_id="gpt2-small"),
    }


def _import(base: Path) -> None:
    for job in (transfer_services.start_config_import(base=str(base)),
                transfer_services.start_import(model_id="gpt2-small", sources=["6-res-jb"], base=str(base))):
        import_source_task(job.id)
        job.refresh_from_db()
        assert job.status == JobStatus.DONE, job.error


def test_export_then_import_into_an_empty_database_reproduces_the_rows(tmp_path: Path) -> None:
    write_source(tmp_path / "original", SPEC)
    _import(tmp_path / "original")
    before = _everything()
    source = Source.objects.get(name="6-res-jb")
    job = transfer_services.start_export(source=source, folder=str(tmp_path / "export"))
    export_source_task(job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    assert job.result["tables"] == {"features": 10, "activations": 20, "explanations": 20}
    Model.objects.filter(id="gpt2-small").delete()
    SourceRelease.objects.filter(name="res-jb").delete()
    ExplanationType.objects.filter(name="oai_token-act-pair").delete()
    ImportedFile.objects.all().delete()
    assert not Feature.objects.filter(source__model_id="gpt2-small").exists()
    _import(tmp_path / "export")
    assert _everything() == before


def test_exported_files_use_neuronpedia_keys(tmp_path: Path) -> None:
    write_source(tmp_path / "original", SPEC)
    _import(tmp_path / "original")
    call_command("export_source", "gpt2-small", "6-res-jb", "--out", str(tmp_path / "export"))
    folder = tmp_path / "export" / "gpt2-small" / "6-res-jb"
    def first(kind: str) -> dict:
        return json.loads(gzip.decompress((folder / kind / "batch-0.jsonl.gz").read_bytes()).splitlines()[0])

    feature, activation, explanation = first("features"), first("activations"), first("explanations")
    assert {"modelId", "layer", "index", "maxActApprox", "frac_nonzero", "freq_hist_data_bar_heights",
            "pos_str", "topkCosSimIndices", "hasVector"} <= feature.keys()
    assert (feature["modelId"], feature["layer"], feature["index"]) == ("gpt2-small", "6-res-jb", "0")
    assert {"id", "tokens", "values", "maxValue", "maxValueTokenIndex", "binMin", "binMax", "binContains",
            "dataSource", "dataIndex"} <= activation.keys()
    assert {"id", "description", "embedding", "typeName", "explanationModelName"} <= explanation.keys()
    assert len(json.loads(explanation["embedding"])) == 256  # pgvector's text form, as Neuronpedia writes it
    assert json.loads((folder / "source.jsonl").read_text())["setName"] == "res-jb"
    assert (tmp_path / "export" / "config" / "explanation_type.jsonl").exists()


def test_export_source_command_fails_clearly_for_an_unknown_source() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no source gpt2-small/1-nope"):
        call_command("export_source", "gpt2-small", "1-nope", "--out", "/tmp/x")
