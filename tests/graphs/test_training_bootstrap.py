"""`manage.py bootstrap_transcoders` (what `bin/np up` starts in the background): with the set trained, it
enters it in the catalog and queues one small dashboard job per layer, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from features.models import Source, SourceSet
from inference import dashboards
from inference.demo import DEMO_MODEL_ID
from inference.transcoder_training import start_training_job, training_params
from inference_worker.models import build_tiny_model
from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import Job, JobKind
from tests.inference_worker.graph_sets import write_set


@pytest.mark.django_db
def test_bootstrap_registers_the_trained_set_and_queues_dashboards_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    model = build_tiny_model(seed=0, n_layers=2, d_model=64)
    current = write_set(tmp_path / "plt", model, model_id=DEMO_MODEL_ID, set_name="plt-demo", d_transcoder=16)
    job = start_training_job(model_id=DEMO_MODEL_ID, params=training_params(), enqueue=False)
    jobs.claim_job(job.id)
    jobs.record_progress(job.id, done=1, total=1, checkpoint={"path": str(current.resolve())})
    jobs.finish_job(job.id, result={"mean": {"explained_variance": 0.4}})
    sent: list[int] = []
    monkeypatch.setattr(dashboards, "enqueue_dashboard_job", lambda j: sent.append(j.id))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("bootstrap_transcoders")
    assert SourceSet.objects.get(model_id=DEMO_MODEL_ID, name="plt-demo").type == "transcoder"
    assert list(Source.objects.filter(source_set__name="plt-demo").order_by("layer")
                .values_list("name", flat=True)) == ["0-plt-demo", "1-plt-demo"]
    queued = Job.objects.filter(kind=JobKind.GENERATE_DASHBOARDS, model_id_ref=DEMO_MODEL_ID)
    assert sorted(queued.values_list("source_ref", flat=True)) == ["0-plt-demo", "1-plt-demo"]
    assert sorted(sent) == sorted(queued.values_list("id", flat=True))
    assert queued.first().params["umap"] is False
    with django_capture_on_commit_callbacks(execute=True):
        call_command("bootstrap_transcoders")  # again: nothing new
    assert queued.count() == 2
    assert Job.objects.filter(kind=JobKind.TRAIN_TRANSCODERS).count() == 1
    assert f"training job #{job.id} done" in capsys.readouterr().out
