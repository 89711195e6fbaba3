from __future__ import annotations

import copy
import math

import pytest

from graphs.format import GraphFormatError, feature_coordinates, validate_graph
from tests.graphs.fixtures import make_graph


def test_fixture_matches_circuit_tracers_own_models() -> None:
    """Our fixture is what circuit-tracer writes: every node equals circuit-tracer's Node factory output."""
    import huggingface_hub.constants

    huggingface_hub.constants.HF_HUB_ENABLE_HF_TRANSFER = False  # shim, see NOTES.md "Circuit tracing"
    graph_models = pytest.importorskip("circuit_tracer.frontend.graph_models")
    data = make_graph()
    graph_models.Model(**data)  # the pydantic model of the whole file
    for node in data["nodes"]:
        layer, ctx = node["layer"], node["ctx_idx"]
        if node["feature_type"] == "cross layer transcoder":
            feat = int(node["node_id"].split("_")[1])
            expected = graph_models.Node.feature_node(int(layer), ctx, feat, influence=node["influence"],
                                                      activation=node["activation"])
        elif node["feature_type"] == "mlp reconstruction error":
            expected = graph_models.Node.error_node(int(layer), ctx, influence=node["influence"])
        elif node["feature_type"] == "embedding":
            expected = graph_models.Node.token_node(ctx, int(node["node_id"].split("_")[1]),
                                                    influence=node["influence"])
        else:
            token = node["clerp"].split('"')[1]
            expected = graph_models.Node.logit_node(pos=ctx, vocab_idx=node["feature"], token=token,
                                                    num_layers=30, target_logit=node["is_target_logit"],
                                                    token_prob=node["token_prob"])
        assert expected.model_dump() == node


def test_valid_graph_passes_and_feature_coordinates_parse() -> None:
    data = make_graph()
    assert validate_graph(data) is data
    node = next(n for n in data["nodes"] if n["feature_type"] == "cross layer transcoder")
    layer, feat, pos = (int(x) for x in node["node_id"].split("_"))
    assert feature_coordinates(node) == (layer, pos, feat)
    assert feature_coordinates(next(n for n in data["nodes"] if n["feature_type"] == "embedding")) is None


def _broken(mutate):  # type: ignore[no-untyped-def]
    data = copy.deepcopy(make_graph())
    mutate(data)
    return data


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("links"), "missing required property 'links'"),
    (lambda d: d["metadata"].pop("prompt_tokens"), "missing required property 'prompt_tokens'"),
    (lambda d: d["metadata"].update(prompt_tokens="The capital"), "/metadata/prompt_tokens"),
    (lambda d: d["nodes"].append(dict(d["nodes"][0])), "duplicate node id"),
    (lambda d: d["nodes"][0].pop("jsNodeId"), "missing required property 'jsNodeId'"),
    (lambda d: d["nodes"][0].update(ctx_idx=99), "/nodes/0/ctx_idx"),
    (lambda d: d["nodes"][0].update(feature_type="mystery"), "unknown feature type"),
    (lambda d: d["nodes"][0].update(activation=math.inf), "/nodes/0/activation"),
    (lambda d: d["links"][0].update(target="nope_1_2"), "unknown node id 'nope_1_2'"),
    (lambda d: d["links"][0].update(weight=math.nan), "/links/0/weight"),
    (lambda d: d["links"][0].update(weight="1.0"), "/links/0/weight"),
    (lambda d: d["qParams"].update(supernodes=[["a", 1]]), "/qParams/supernodes"),
    (lambda d: d.update(nodes=[]), "/nodes"),
])
def test_malformed_graphs_are_refused_with_a_path(mutate, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(GraphFormatError) as info:
        validate_graph(_broken(mutate))
    assert message in str(info.value)


def test_root_must_be_an_object() -> None:
    with pytest.raises(GraphFormatError, match="root: must be a JSON object"):
        validate_graph([1, 2])
