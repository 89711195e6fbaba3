"""Through a real `manage.py inference_worker` process and the real Redis: the training job is sent to the
model's queue, trains a tiny set, enters it in the catalog; then a dashboard job on one of its layers runs on
the same worker, which attaches the set it did not have at start (a transcoder source's dashboards read the
input hook + encoder, and its evals splice the MLP output)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from features.models import Activation, Feature, Source
from inference import dashboards
from inference.transcoder_training import start_training_job
from neuronpedia.jobs.models import Job
from neuronpedia.lib.jobs import JobStatus
from tests.support import child_database_url

ROOT = Path(__file__).resolve().parents[2]
START = ("import django; django.setup(); from django.core.management import call_command; "
         "call_command('inference_worker', config=sys.argv[1], loglevel='WARNING')")
PARAMS = {"set_name": "plt-w", "n_tokens": 1024, "context_size": 32, "batch_seqs": 4, "d_transcoder": 64,
          "k": 4, "eval_tokens": 128, "splice_eval_tokens": 64, "model_dtype": "float32"}

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    config = tmp_path / "worker.json"
    current = tmp_path / "cache" / "transcoders" / "tiny" / "plt-w" / "current"  # absent until trained
    config.write_text(json.dumps({"model_id": "tiny", "model_source": "tiny", "device": "cpu",
                                  "transcoder_sets": [{"name": "plt-w", "path": str(current)}]}))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "neuronpedia.settings.test", "OMP_NUM_THREADS": "1",
           "DATABASE_URL": child_database_url(),
           "NP_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; " + START, str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait(job: Job, proc: subprocess.Popen[str], seconds: float = 120) -> Job:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            return job
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.5)
    pytest.fail(f"job {job.id} still {job.status} after {seconds} s")


def test_training_then_transcoder_dashboards_on_a_real_worker(worker: subprocess.Popen[str]) -> None:
    job = _wait(start_training_job(model_id="tiny", params=PARAMS), worker)
    assert job.status == JobStatus.DONE, job.error
    assert [row["layer"] for row in job.result["layers"]] == [0, 1]
    source = Source.objects.get(model_id="tiny", name="1-plt-w")
    assert source.source_set.type == "transcoder"
    params = dashboards.DashboardParams(dataset="corpus:brown", n_tokens=512, context_size=32, batch_size=4,
                                        umap=False, eval_sequences=2, top_k=5, n_bins=2, bin_size=2)
    dash = _wait(dashboards.start_dashboard_job(source=source, params=params), worker)
    assert dash.status == JobStatus.DONE, dash.error
    source.refresh_from_db()
    assert source.has_dashboards
    assert Feature.objects.filter(source=source).count() == 64
    assert Activation.objects.filter(feature__source=source).count() == dash.result["activations"] > 0
    evals = dash.result["evals"]
    assert evals["misc"]["spliced_hook"] == "blocks.1.hook_mlp_out"
    assert evals["model_performance_preservation"]["ce_loss_with_ablation"] > 0
