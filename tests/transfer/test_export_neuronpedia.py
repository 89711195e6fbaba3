"""Our export of an imported Neuronpedia source passes Neuronpedia's import (a faithful port of its SQL and
Prisma validation, tests/transfer/np_port.py) with every value equal to the files its exporter wrote, and
imports back into us losslessly: Neuronpedia -> us -> Neuronpedia-format files -> us."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from features.models import Source
from tests.transfer import np_port
from tests.transfer.np_format import (
    assert_batch_rows_stored,
    assert_config_stored,
    assert_metadata_stored,
    read_jsonl,
    same,
)
from transfer.exporter import export_source
from transfer.importer.layout import NP_COLUMNS
from transfer.importer.pipeline import import_config, import_source, plan_source
from transfer.importer.storage import LocalStore
from transfer.importer.synthetic import DEFAULT_CREATOR_ID, SyntheticSpec, write_source

pytestmark = pytest.mark.django_db
SPEC = SyntheticSpec(num_features=1100, acts_per_feature=2, context=4, private_activations=1)
TABLE_OF = {"features": "Neuron", "activations": "Activation", "explanations": "Explanation"}


def _import(root: Path) -> Source:
    store = LocalStore(root)
    import_config(store)
    result = import_source(store, "gpt2-small", "6-res-jb", plan_source(store, "gpt2-small", "6-res-jb"))
    assert result["ok"] is True, result
    return Source.objects.get(model_id="gpt2-small", name="6-res-jb")


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    original = tmp_path / "neuronpedia"
    write_source(original, SPEC)
    ours = tmp_path / "ours"
    export_source(_import(original), ours)
    return original, ours


def _np_columns(table: str) -> set[str]:
    return {name for name in np_port._columns(table)}


def test_export_writes_only_neuronpedia_columns_and_their_required_ids(exported: tuple[Path, Path]) -> None:
    _, ours = exported
    np_port.create_schema([])
    folder = ours / "gpt2-small/6-res-jb"
    for name, table in (("model.jsonl", "Model"), ("release.jsonl", "SourceRelease"),
                        ("sourceset.jsonl", "SourceSet"), ("source.jsonl", "Source"),
                        ("inference_hosts.jsonl", "InferenceHostSource")):
        for row in read_jsonl(folder / name):
            assert set(row) <= set(NP_COLUMNS[table]), (name, set(row) - set(NP_COLUMNS[table]))
    for kind, table in TABLE_OF.items():
        for path in (folder / kind).glob("*.jsonl.gz"):
            for row in read_jsonl(path):
                assert set(row) <= _np_columns(table), (path, set(row) - _np_columns(table))
    assert read_jsonl(folder / "activations/batch-0.jsonl.gz")[0]["creatorId"] == DEFAULT_CREATOR_ID
    assert read_jsonl(folder / "explanations/batch-0.jsonl.gz")[0]["authorId"] == "clkht01d40000jv08hvalcvly"
    assert (ours / "config/eval_type.jsonl").exists()
    host = "cm1host00000000000000000a"
    assert read_jsonl(folder / "inference_hosts_on_source.jsonl") == [{
        "sourceId": "6-res-jb", "sourceModelId": "gpt2-small", "inferenceHostId": host}]


def test_neuronpedia_import_refuses_keys_it_does_not_have() -> None:
    np_port.create_schema(["u1"])
    with pytest.raises(np_port.PrismaError, match="Unknown argument `hfId`"):
        np_port.prisma_create("Model", {"id": "m", "creatorId": "u1", "layers": 1, "neuronsPerLayer": 1,
                                        "owner": "", "hfId": "org/m"})
    with pytest.raises(np_port.PrismaError, match="`creatorId` is missing"):
        np_port.prisma_create("Model", {"id": "m", "layers": 1, "neuronsPerLayer": 1, "owner": ""})


def test_neuronpedia_import_fails_on_an_empty_batch_file() -> None:
    np_port.create_schema([])
    with pytest.raises(np_port.json.JSONDecodeError):
        np_port.import_jsonl_string("Activation", "")


def test_a_source_without_activations_exports_no_empty_file_and_passes_neuronpedias_import(
        tmp_path: Path) -> None:
    """Their exporter writes an empty activations/batch-0 for a source with no activations (steering
    vectors); we import it, but must not write one: their import fails on it."""
    spec = SyntheticSpec(num_features=5, acts_per_feature=0, private_activations=0, context=4)
    write_source(tmp_path / "neuronpedia", spec)
    assert read_jsonl(tmp_path / "neuronpedia/gpt2-small/6-res-jb/activations/batch-0.jsonl.gz") == []
    ours = tmp_path / "ours"
    (ours / "gpt2-small/6-res-jb/activations").mkdir(parents=True)
    (ours / "gpt2-small/6-res-jb/activations/batch-0.jsonl.gz").write_bytes(b"stale")
    export_source(_import(tmp_path / "neuronpedia"), ours)
    assert list((ours / "gpt2-small/6-res-jb/activations").iterdir()) == []
    np_port.create_schema([DEFAULT_CREATOR_ID, "cljj57d3c000076ei38vwnv35"])
    np_port.import_source(ours, "gpt2-small", "6-res-jb")
    assert len(np_port.rows("Neuron", '"index"')) == 5


def _compare_port_with_original(original: Path) -> None:
    folder = original / "gpt2-small/6-res-jb"
    port = {
        "features": {r["index"]: r for r in np_port.rows("Neuron", '"index"')},
        "activations": {r["id"]: r for r in np_port.rows("Activation", '"id"')},
        "explanations": {r["id"]: r for r in np_port.rows("Explanation", '"id"')},
    }
    for kind, key in (("features", "index"), ("activations", "id"), ("explanations", "id")):
        seen = 0
        for path in sorted((folder / kind).glob("*.jsonl.gz")):
            for row in read_jsonl(path):
                stored = port[kind][row[key]]
                for column, value in row.items():
                    actual = stored[column]
                    if column == "embedding" and value is not None:
                        value, actual = (np_port.json.loads(value), np_port.json.loads(actual))
                    if isinstance(value, float) and math.isnan(value):
                        continue
                    same(value, actual, f"{kind} {row[key]} {column}")
                seen += 1
        assert seen == len(port[kind]), kind


def test_our_export_passes_neuronpedias_import_with_every_value_kept(exported: tuple[Path, Path]) -> None:
    original, ours = exported
    np_port.create_schema([DEFAULT_CREATOR_ID, "cljj57d3c000076ei38vwnv35"])
    np_port.import_source(ours, "gpt2-small", "6-res-jb")
    _compare_port_with_original(original)
    model = np_port.rows("Model", '"id"')[0]
    original_model = read_jsonl(original / "gpt2-small/6-res-jb/model.jsonl")[0]
    assert model == {**original_model, "createdAt": model["createdAt"], "updatedAt": model["updatedAt"]}
    assert model["createdAt"].startswith(original_model["createdAt"][:19])


def test_round_trip_neuronpedia_to_us_to_neuronpedia_format_to_us_is_lossless(
        exported: tuple[Path, Path]) -> None:
    original, ours = exported
    Source.objects.filter(model_id="gpt2-small").delete()
    _import(ours)
    folder = original / "gpt2-small/6-res-jb"
    assert assert_batch_rows_stored(folder, "gpt2-small", "6-res-jb") == SPEC.counts
    assert_metadata_stored(folder, "gpt2-small", "6-res-jb")
    assert_config_stored(original)
