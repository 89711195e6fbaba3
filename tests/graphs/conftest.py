"""A demo catalog for graph tests: an instruct model with a `plt-demo` transcoder source set (three of its
layers have sources, one feature has a dashboard with activations and an explanation)."""

from __future__ import annotations

from typing import Any

import pytest

from features.models import Explanation, SourceSet
from tests import factories
from tests.graphs.fixtures import make_graph

MODEL_ID = "smollm2-135m-instruct"


@pytest.fixture
def demo(db: Any) -> dict[str, Any]:
    return make_demo()


def make_demo() -> dict[str, Any]:
    model = factories.make_model(MODEL_ID, display_name="SmolLM2 135M Instruct", layers=30, dimension=576,
                                 instruct=True)
    sources = {layer: factories.make_source(model, layer=layer, set_name="plt-demo", num_features=2304,
                                            hook_name=f"blocks.{layer}.hook_resid_mid")
               for layer in (0, 20, 29)}
    SourceSet.objects.filter(model=model, name="plt-demo").update(type="transcoder")
    graph_json = make_graph()
    # give the strongest feature feeding the target logit a dashboard
    target = next(n for n in graph_json["nodes"] if n.get("is_target_logit"))
    inputs = sorted((link for link in graph_json["links"] if link["target"] == target["node_id"]),
                    key=lambda link: -link["weight"])
    node = next(n for n in graph_json["nodes"] if n["node_id"] == inputs[0]["source"])
    layer, index, _ = (int(x) for x in node["node_id"].split("_"))
    source = sources.get(layer) or factories.make_source(model, layer=layer, set_name="plt-demo",
                                                         num_features=2304)
    feature = factories.make_feature(source, index, max_act_approx=11.0)
    factories.make_activation(feature, ["Paris", " is", " the", " capital", " of", " France"],
                              [0.0, 0.2, 0.1, 8.5, 1.0, 11.0])
    Explanation.objects.create(feature=feature, description="capital cities and countries")
    return {"model": model, "graph_json": graph_json, "dash_node": node, "feature": feature}
