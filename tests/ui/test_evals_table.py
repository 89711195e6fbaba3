"""Issue 18 #4: evals read as one labelled table (names, units, definitions), on the source page and on the
dashboard job's page, never as raw Python dicts."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from features.views import present
from neuronpedia.jobs.models import Job

CORE = {"sparsity": {"l0": 32.0},
        "reconstruction_quality": {"explained_variance": 0.825, "mse": 645677.8, "cossim": 0.958},
        "model_performance_preservation": {"ce_loss_score": 0.678, "ce_loss_without_sae": 4.17,
                                           "ce_loss_with_sae": 6.3, "ce_loss_with_ablation": 10.8},
        "misc": {"frac_dead": 0.0428, "n_tokens": 3937, "n_eval_tokens": 3995,
                 "definitions": "sae_lens.evals"},
        "excluding_attention_sink": {"positions_excluded": 2, "ce_loss_score": 0.981}}


def test_eval_groups_label_units_and_split_the_sink_variant() -> None:
    groups = present.eval_groups([SimpleNamespace(type="training", output={"lr": 0.0004, "l0": 32}),
                                  SimpleNamespace(type="core", output=CORE)])
    assert [g.key for g in groups] == ["core", "core/excluding_attention_sink", "training"]
    core = {r.key: r for r in groups[0].rows}
    assert core["ce_loss_score"].label == "CE loss recovered"
    assert core["ce_loss_score"].value == "0.678"
    assert core["ce_loss_with_sae"].unit == "nats / token"
    assert core["frac_dead"].value == "4.28%"
    assert core["n_tokens"].value == "3,937"
    assert "definitions" not in core
    assert [r.key for r in groups[0].rows][:3] == ["l0", "explained_variance", "ce_loss_score"]
    assert {r.key: r.value for r in groups[2].rows}["lr"] == "0.0004"
    assert "Not comparable" in groups[1].note


def test_dashboard_job_page_shows_the_evals_table(client, admin_user: Any) -> None:
    job = Job.objects.create(kind="generate_dashboards", title="dashboards", status="DONE",
                             result={"features": 16, "dead": 0, "activations": 10, "sequences": 4,
                                     "tokens": 512, "evals": CORE}, requested_by=admin_user)
    client.force_login(admin_user)
    body = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "CE loss recovered" in body
    assert "Core evals without the attention sink" in body
    assert "{&#x27;" not in body  # no Python dict reprs
    assert "{'" not in body
