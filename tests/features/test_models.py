from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from features.models import (
    Activation,
    Explanation,
    ExplanationScore,
    ExplanationScoreType,
    ExplanationType,
    Feature,
    FeatureList,
    ListItem,
    Model,
    Source,
    SourceSet,
    parse_source_id,
)
from tests import factories

pytestmark = pytest.mark.django_db


def test_parse_source_id_splits_layer_set_and_suffix() -> None:
    assert (parse_source_id("6-res-jb").layer, parse_source_id("6-res-jb").set_name) == (6, "res-jb")
    parsed = parse_source_id("20-gemmascope-res-16k__l0-32")
    assert (parsed.layer, parsed.set_name, parsed.suffix) == (20, "gemmascope-res-16k", "l0-32")
    assert str(parsed) == "20-gemmascope-res-16k__l0-32"


@pytest.mark.parametrize("bad", ["res-jb", "6res-jb", "-6-res-jb", "6-", "6-Res"])
def test_parse_source_id_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid source id"):
        parse_source_id(bad)


def test_source_name_is_unique_per_model_only(catalog: dict) -> None:
    other = factories.make_model("gemma-2-2b", layers=26, dimension=2304)
    factories.make_source(other, layer=6, set_name="res-jb")  # same name, other model: fine
    with pytest.raises(IntegrityError):
        factories.make_source(catalog["model"], layer=6, set_name="res-jb")


def test_source_set_is_unique_per_model(catalog: dict) -> None:
    with pytest.raises(IntegrityError):
        SourceSet.objects.create(model=catalog["model"], name="res-jb")


def test_feature_index_is_unique_per_source(catalog: dict) -> None:
    with pytest.raises(IntegrityError):
        factories.make_feature(catalog["source"], 200)


def test_source_name_must_start_with_layer_in_database(catalog: dict) -> None:
    with pytest.raises(IntegrityError):
        Source.objects.create(model=catalog["model"], source_set=catalog["source"].source_set,
                              name="res-jb", layer=6)


def test_source_clean_checks_layer_and_set(catalog: dict) -> None:
    source = Source(model=catalog["model"], source_set=catalog["source"].source_set,
                    name="7-res-jb", layer=8)
    with pytest.raises(ValidationError, match="implies layer 7"):
        source.clean()
    source = Source(model=catalog["model"], source_set=catalog["source"].source_set,
                    name="7-other", layer=7)
    with pytest.raises(ValidationError, match="does not belong to set"):
        source.clean()


def test_deleting_a_model_cascades_to_its_whole_catalog(catalog: dict) -> None:
    Explanation.objects.create(feature=catalog["feature"], description="France")
    catalog["model"].delete()
    assert Explanation.objects.count() == 0
    assert Source.objects.count() == 0
    assert Feature.objects.count() == 0
    assert Activation.objects.count() == 0
    assert SourceSet.objects.count() == 0


def test_deleting_a_release_keeps_its_source_sets(catalog: dict) -> None:
    catalog["release"].delete()
    assert SourceSet.objects.get(name="res-jb").release is None


def test_explanation_type_in_use_cannot_be_deleted(catalog: dict) -> None:
    kind = ExplanationType.objects.create(name="np_max-act-logits")
    Explanation.objects.create(feature=catalog["feature"], description="France", type=kind)
    with pytest.raises(ProtectedError):
        kind.delete()


def test_activation_values_must_match_tokens(catalog: dict) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Activation.objects.create(feature=catalog["feature"], tokens=["a", "b"], values=[1.0],
                                  max_value=1.0, max_value_token_index=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Activation.objects.create(feature=catalog["feature"], tokens=["a"], values=[1.0],
                                  max_value=1.0, max_value_token_index=3)


def test_a_score_is_unique_per_method_and_model_even_without_model(catalog: dict) -> None:
    explanation = Explanation.objects.create(feature=catalog["feature"], description="France")
    fuzz = ExplanationScoreType.objects.create(name="eleuther_fuzz")
    ExplanationScore.objects.create(explanation=explanation, score_type=fuzz, status="FAILED",
                                    error="provider returned 402")
    with pytest.raises(IntegrityError):
        ExplanationScore.objects.create(explanation=explanation, score_type=fuzz)


def test_a_done_score_needs_a_value(catalog: dict) -> None:
    explanation = Explanation.objects.create(feature=catalog["feature"], description="France")
    fuzz = ExplanationScoreType.objects.create(name="eleuther_fuzz")
    with pytest.raises(IntegrityError):
        ExplanationScore.objects.create(explanation=explanation, score_type=fuzz, status="DONE")


def test_embedding_requires_embedder_name(catalog: dict) -> None:
    with pytest.raises(IntegrityError):
        Explanation.objects.create(feature=catalog["feature"], description="x",
                                   embedding=[0.1] * 384)


def test_list_items_are_unique_and_follow_their_list(catalog: dict, alice) -> None:
    flist = FeatureList.objects.create(name="france", owner=alice)
    ListItem.objects.create(feature_list=flist, feature=catalog["feature"], description="capital")
    with pytest.raises(IntegrityError), transaction.atomic():
        ListItem.objects.create(feature_list=flist, feature=catalog["feature"])
    alice.delete()
    assert ListItem.objects.count() == 0
    assert Feature.objects.filter(pk=catalog["feature"].pk).exists()


def test_model_shape_must_not_be_negative(db: None) -> None:
    """0 layers / null dimension mean unknown (Neuronpedia's SAEDashboard converter writes them)."""
    assert Model.objects.create(id="unknown-shape", layers=0, dimension=None).layers == 0
    with pytest.raises(IntegrityError):
        Model.objects.create(id="broken", layers=-1, dimension=768)


def test_every_explanation_row_carries_its_features_source(catalog: dict) -> None:
    """Kept by the trigger of migration 0006, whatever the writer: ORM, bulk_create, raw SQL."""
    other = factories.make_source(catalog["model"], 7)
    here, there = factories.make_feature(catalog["source"], 0), factories.make_feature(other, 0)
    created = Explanation.objects.create(feature=here, description="orm")
    Explanation.objects.bulk_create([Explanation(feature=there, description="bulk")])
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO features_explanation (feature_id, source_id, external_id, description, "
                       "explainer_settings, embedder, score_v1, notes, method, score_type_name, created_at) "
                       "VALUES (%s, %s, '', 'raw', '{}', '', 0, '', '', '', now())", [here.pk, other.pk])
    rows = dict(Explanation.objects.values_list("description", "source_id"))
    assert rows == {"orm": catalog["source"].pk, "bulk": other.pk, "raw": catalog["source"].pk}

    Explanation.objects.filter(pk=created.pk).update(feature=there)  # moving it moves its source
    assert Explanation.objects.get(pk=created.pk).source_id == other.pk
    Explanation.objects.filter(pk=created.pk).update(source_id=catalog["source"].pk)  # cannot be forged
    assert Explanation.objects.get(pk=created.pk).source_id == other.pk


def test_migration_0006_backfills_the_source_of_existing_rows(catalog: dict) -> None:
    from importlib import import_module

    from django.db import connection

    feature = factories.make_feature(catalog["source"], 0)
    explanation = Explanation.objects.create(feature=feature, description="old row")
    with connection.cursor() as cursor:  # as a row written before the migration would be
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks: ALTER TABLE refuses those
        cursor.execute("ALTER TABLE features_explanation DISABLE TRIGGER features_explanation_set_source")
        cursor.execute("ALTER TABLE features_explanation ALTER COLUMN source_id DROP NOT NULL")
        cursor.execute("UPDATE features_explanation SET source_id = NULL WHERE id = %s", [explanation.pk])
        cursor.execute("ALTER TABLE features_explanation ENABLE TRIGGER features_explanation_set_source")
    migration = import_module("features.migrations.0006_explanation_source")
    with connection.schema_editor() as editor:
        migration.backfill(None, editor)
    assert Explanation.objects.get(pk=explanation.pk).source_id == catalog["source"].pk
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE features_explanation ALTER COLUMN source_id SET NOT NULL")
