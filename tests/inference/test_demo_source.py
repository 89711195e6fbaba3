from __future__ import annotations

import pytest
from django.core.management import call_command

from features.models import Eval, Model, Source
from inference import demo

pytestmark = pytest.mark.django_db


def test_create_demo_source_registers_the_committed_sae_idempotently(capsys) -> None:
    call_command("create_demo_source")
    call_command("create_demo_source")
    source = Source.objects.get(model_id=demo.DEMO_MODEL_ID, name=demo.DEMO_SOURCE)
    assert (source.layer, source.hook_name, source.num_features) == (
        15, "blocks.15.hook_resid_post", 4608)
    assert source.source_set.name == demo.DEMO_SET
    assert source.saelens_config["architecture"] == "topk"
    model = Model.objects.get(id=demo.DEMO_MODEL_ID)
    assert (model.layers, model.dimension, model.instruct) == (30, 576, True)
    training = Eval.objects.get(source=source, type="training").output
    assert 0.5 < training["explained_variance"] < 1.0
    assert "inference_worker --config" in capsys.readouterr().out


def test_demo_worker_config_points_at_the_committed_sae() -> None:
    from inference_worker.config import load_config

    config = load_config(demo.DEMO_CONFIG)
    assert config.model_id == demo.DEMO_MODEL_ID
    assert config.source_ids == (demo.DEMO_SOURCE,)
    assert config.source_sets[0].sources[0].path == str(demo.DEMO_SAE_DIR)
