"""A real attribution graph: circuit-tracer 0.5 on a tiny random Llama-like model with random transcoders,
converted with circuit-tracer's own create_graph_files pieces (as the worker does), is accepted by
store_generated_graph's strict check and comes back out of the database unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from graphs import services
from graphs.format import feature_coordinates
from neuronpedia.jobs.models import Job
from tests.graphs.conftest import MODEL_ID

pytestmark = pytest.mark.django_db


def _real_graph(slug: str) -> dict[str, Any]:
    import huggingface_hub.constants

    huggingface_hub.constants.HF_HUB_ENABLE_HF_TRANSFER = False  # shim, see NOTES.md "Circuit tracing"
    torch = pytest.importorskip("torch")
    pytest.importorskip("circuit_tracer")
    from circuit_tracer.attribution.attribute import attribute
    from circuit_tracer.graph import prune_graph
    from circuit_tracer.replacement_model.replacement_model_transformerlens import (
        TransformerLensReplacementModel,
    )
    from circuit_tracer.transcoder.activation_functions import TopK
    from circuit_tracer.transcoder.single_layer_transcoder import SingleLayerTranscoder, TranscoderSet
    from circuit_tracer.utils.create_graph_files import build_model, create_nodes, create_used_nodes_and_edges

    from inference_worker.models import build_tiny_model

    torch.manual_seed(0)
    base = build_tiny_model(n_layers=2, d_model=32, n_heads=4)
    d, width = base.cfg.d_model, 64
    tcs = {}
    for layer in range(base.cfg.n_layers):
        tc = SingleLayerTranscoder(d, width, TopK(8), layer, dtype=torch.float32)
        for p in tc.parameters():
            torch.nn.init.normal_(p, std=0.3)
        tcs[layer] = tc
    tset = TranscoderSet(tcs, feature_input_hook="hook_resid_mid", feature_output_hook="hook_mlp_out",
                         scan="plt-demo")
    rm = TransformerLensReplacementModel.from_config(base.cfg, tset, tokenizer=base.tokenizer)
    wanted = set(rm.state_dict())
    state = {}
    for key, value in base.state_dict().items():
        renamed = (key.replace(".mlp.", ".mlp.old_mlp."), key.replace("unembed.", "unembed.old_unembed."))
        for cand in (key, *renamed):
            if cand in wanted:
                state[cand] = value
                break
    rm.load_state_dict(state, strict=False)
    graph = attribute("the cat sat on the", rm, max_n_logits=3, batch_size=16, max_feature_nodes=64)
    node_mask, edge_mask, cumulative = prune_graph(graph, 0.8, 0.98)
    nodes = create_nodes(graph, node_mask, rm.tokenizer, cumulative)
    used_nodes, used_edges = create_used_nodes_and_edges(graph, nodes, edge_mask)
    return build_model(graph, used_nodes, used_edges, slug, "plt-demo", 0.8, rm.tokenizer).model_dump()


def test_store_a_real_circuit_tracer_graph(demo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from neuronpedia.celery import app

    monkeypatch.setattr(app, "send_task", lambda *a, **kw: None)
    row, _ = services.request_graph(model=demo["model"], prompt="the cat sat on the", slug="cat")
    data = _real_graph("cat")
    assert {n["feature_type"] for n in data["nodes"]} >= {"embedding", "logit", "cross layer transcoder"}
    stored = services.store_generated_graph(job=Job.objects.get(id=row.job_id), graph=data)
    assert stored.status == "READY"
    assert stored.n_links == len(data["links"]) > 0
    out = stored.to_graph_json()
    assert out["nodes"] == data["nodes"]
    assert out["links"] == data["links"]
    assert out["metadata"]["scan"] == "plt-demo"
    assert out["metadata"]["schema_version"] == 1
    feature = next(n for n in out["nodes"] if n["feature_type"] == "cross layer transcoder")
    layer, pos, index = feature_coordinates(feature)
    assert (feature["layer"], feature["ctx_idx"]) == (str(layer), pos)
    assert 0 <= index < 64
    assert stored.model_id == MODEL_ID
