"""A dashboard job runs end to end in a real inference worker process, through the real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from features.models import Activation, Model, Source, SourceSet
from inference import dashboards as service
from neuronpedia.lib.jobs import JobStatus
from tests.support import child_database_url

ROOT = Path(__file__).resolve().parents[2]
# The worker command imports the inference.tasks package (every task); the dashboards module is imported
# here explicitly as well.
START = ("import django; django.setup(); from inference.tasks import dashboards; "
         "from django.core.management import call_command; "
         "call_command('inference_worker', config=sys.argv[1], loglevel='WARNING')")


@pytest.fixture
def inference_worker(worker_config: Path) -> Any:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "neuronpedia.settings.test",
           "DATABASE_URL": child_database_url(),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; " + START, str(worker_config)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.django_db(transaction=True)
def test_dashboard_job_runs_in_a_real_inference_worker(inference_worker: Any, text_dir: Path) -> None:
    model = Model.objects.create(id="tiny", layers=2, dimension=64)
    source = Source.objects.create(model=model, source_set=SourceSet.objects.create(model=model, name="id"),
                                   name="0-id", layer=0, hook_name="blocks.0.hook_resid_post")
    params = service.DashboardParams(dataset=f"file:{text_dir}", n_tokens=256, context_size=32,
                                     batch_size=4, umap=False, eval_sequences=2)
    job = service.start_dashboard_job(source=source, params=params)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            break
        assert inference_worker.poll() is None, inference_worker.stdout.read()
        time.sleep(0.5)
    assert job.status == JobStatus.DONE, job.error
    assert (job.done, job.total) == (8, 8)
    source.refresh_from_db()
    assert source.has_dashboards
    assert Activation.objects.filter(feature__source=source).count() == job.result["activations"]
