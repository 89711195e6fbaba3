"""The TRAIN_TRANSCODERS job on a tiny model, in process: it trains every layer, reports per layer, enters the
set in the catalog, is idempotent, resumes from its checkpoint after a crash, and the command fails loudly.
(A real Celery worker runs it in test_training_worker.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from django.core.management import CommandError, call_command

from features.models import Eval, Source, SourceSet
from inference import demo
from inference import transcoder_training as training
from inference.tasks.transcoders import run_training_job
from inference_worker import training_transcoders as tt
from inference_worker.models import build_tiny_model
from neuronpedia.jobs import services as jobs
from neuronpedia.lib.jobs import JobStatus

torch.set_num_threads(1)
TINY = {"n_tokens": 1024, "context_size": 32, "batch_seqs": 4, "d_transcoder": 64, "k": 4, "eval_tokens": 128,
        "splice_eval_tokens": 64, "model_dtype": "float32"}  # 8 batches -> 16 steps, ~2 s


@pytest.fixture(scope="module")
def tiny() -> Any:
    return build_tiny_model(seed=0, n_layers=2, d_model=64)


def _job(set_name: str, **extra: Any) -> Any:
    return training.start_training_job(model_id="tiny", params={"set_name": set_name, **TINY, **extra},
                                       enqueue=False)


@pytest.mark.django_db
def test_job_trains_every_layer_reports_and_registers_the_set(tiny: Any, tmp_path: Path) -> None:
    job = _job("plt-a")
    assert run_training_job(job.id, model=tiny, root=tmp_path)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    assert job.done == job.total == 16 + 1  # 16 steps + the evaluation's share
    layers = job.result["layers"]
    assert [row["layer"] for row in layers] == [0, 1]
    for row in layers:
        assert 0 < row["l0"] <= 64
        assert 0 <= row["dead_fraction"] <= 1
        assert -1 < row["explained_variance"] < 1
        assert 0 <= row["splice_top1_agreement"] <= 1
    assert 0 <= job.result["replacement"]["top1_agreement"] <= 1
    assert job.result["replacement"]["kl"] >= 0
    assert job.result["catalog"] == {"source_set": "plt-a", "sources": ["0-plt-a", "1-plt-a"]}
    assert SourceSet.objects.get(model_id="tiny", name="plt-a").type == "transcoder"
    s1 = Source.objects.get(model_id="tiny", name="1-plt-a")
    assert (s1.layer, s1.hook_name, s1.num_features) == (1, "blocks.1.ln2.hook_normalized", 64)
    assert s1.saelens_config["metadata"]["hook_name_out"] == "blocks.1.hook_mlp_out"
    assert Eval.objects.get(source=s1, type="training").output["explained_variance"] == layers[1][
        "explained_variance"]
    out = Path(job.result["path"])
    assert (out.parent.parent / "current").resolve() == out.resolve()
    assert (out / "circuit_tracer" / "config.yaml").exists()


@pytest.mark.django_db
def test_a_second_job_for_a_trained_version_is_done_at_once_and_catalog_rows_are_upserted(
        tiny: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _job("plt-b")
    run_training_job(first.id, model=tiny, root=tmp_path)
    first.refresh_from_db()
    monkeypatch.setattr(tt, "mlp_io", lambda *a, **k: pytest.fail("trained again"))
    second = _job("plt-b")
    assert run_training_job(second.id, model=tiny, root=tmp_path)
    second.refresh_from_db()
    assert second.status == JobStatus.DONE
    assert second.result["layers"] == first.result["layers"]
    assert not run_training_job(second.id, model=tiny, root=tmp_path)  # not QUEUED: not claimed again
    demo.register_transcoder_set(folder=Path(first.result["path"]))
    assert Source.objects.filter(model_id="tiny", source_set__name="plt-b").count() == 2
    assert Eval.objects.filter(source__source_set__name="plt-b", type="training").count() == 2


@pytest.mark.django_db
def test_a_crashed_job_resumes_from_its_checkpoint_when_requeued(
        tiny: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = tt.mlp_io, []

    def crash_on_sixth_batch(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 6:  # batch 5 = step 10; the last checkpoint was at step 8
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(tt, "mlp_io", crash_on_sixth_batch)
    job = _job("plt-c", checkpoint_every=4)
    with pytest.raises(RuntimeError, match="worker killed"):
        run_training_job(job.id, model=tiny, root=tmp_path)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "worker killed" in job.error
    assert Path(job.checkpoint["path"], "checkpoint.pt").exists()
    assert jobs.requeue_job(job.id)
    assert run_training_job(job.id, model=tiny, root=tmp_path)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    assert job.result["resumed_from_step"] == 8
    assert not Path(job.result["path"], "checkpoint.pt").exists()


@pytest.mark.django_db
def test_ensure_training_job_reuses_resumes_or_starts(django_capture_on_commit_callbacks: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[int] = []
    monkeypatch.setattr(training, "enqueue_training_job", lambda job: sent.append(job.id))
    params = training.training_params(set_name="plt-d", tokens=1024, width=64, k=4)
    with django_capture_on_commit_callbacks(execute=True):
        job, what = training.ensure_training_job(model_id="tiny", params=params)
    assert what == "started"
    assert sent == [job.id]
    assert json.loads(json.dumps(job.params)) == params
    assert training.ensure_training_job(model_id="tiny", params=params) == (job, "running")
    jobs.claim_job(job.id)
    jobs.fail_job(job.id, error="killed")
    with django_capture_on_commit_callbacks(execute=True):
        assert training.ensure_training_job(model_id="tiny", params=params)[1] == "resumed"
    assert sent == [job.id, job.id]


@pytest.mark.django_db
@pytest.mark.parametrize(("argv", "message"), [
    (["--steps", "0"], "steps must be >= 1"),
    (["--steps", "4", "--tokens", "4096"], "not both"),
    (["--width", "8", "--k", "8"], "k must be in"),
    (["--inline", "--model", "other-model"], "--inline needs --config"),
    (["--inline", "--config", "/nonexistent/worker.env"], "bad worker configuration"),
])
def test_command_errors_exit_non_zero_with_a_message(argv: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("train_transcoders", *argv)


@pytest.mark.django_db
def test_command_inline_trains_with_the_workers_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NP_CACHE_DIR", str(tmp_path))
    config = tmp_path / "worker.json"
    config.write_text(json.dumps({"model_id": "tiny", "model_source": "tiny", "device": "cpu"}))
    call_command("train_transcoders", "--inline", "--model", "tiny", "--config", str(config),
                 "--set", "plt-e", "--tokens", "1024", "--context-size", "32", "--width", "64", "--k", "4",
                 "--eval-tokens", "128", "--splice-eval-tokens", "64", "--model-dtype", "float32")
    out = capsys.readouterr().out
    assert "running inline" in out
    assert "mean explained variance" in out
    assert (tmp_path / "transcoders" / "tiny" / "plt-e" / "current" / ".complete").exists()
    assert Source.objects.filter(model_id="tiny", source_set__name="plt-e").count() == 2
