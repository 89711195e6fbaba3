"""The Django side: writing results, atomic replacement, jobs (inline, resume), command, admin action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from features.models import Activation, Eval, Feature, Model, Source, SourceSet
from inference import dashboards as service
from inference_worker.dashboards import DashboardConfig, generate_dashboards
from inference_worker.saes import SourceRegistry
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.jobs.services import requeue_job
from neuronpedia.lib.jobs import JobStatus

CFG = DashboardConfig(umap=False, eval_sequences=4)


@pytest.fixture
def source_row(db: None) -> Source:
    model = Model.objects.create(id="tiny", layers=2, dimension=64)
    source_set = SourceSet.objects.create(model=model, name="id")
    return Source.objects.create(model=model, source_set=source_set, name="0-id", layer=0,
                                 hook_name="blocks.0.hook_resid_post")


@pytest.fixture(scope="module")
def result(tiny_model: Any, id_source: Any, sequences: Any) -> Any:
    return generate_dashboards(tiny_model, id_source, sequences[:12], CFG, batch_size=6)


def _params(text_dir: Path, **kw: Any) -> service.DashboardParams:
    base = {"dataset": f"file:{text_dir}", "n_tokens": 12 * 32, "context_size": 32, "batch_size": 3,
            "checkpoint_every": 1, "umap": False, "eval_sequences": 4}
    return service.DashboardParams(**{**base, **kw})


def _snapshot(source: Source) -> list[tuple[Any, ...]]:
    return sorted(Activation.objects.filter(feature__source=source).values_list(
        "feature__index", "data_index", "qualifying_token_index", "max_value", "bin_min", "values"))


def test_write_dashboards_writes_rows_and_a_rerun_replaces_them(source_row: Source, result: Any) -> None:
    summary = service.write_dashboards(source=source_row, result=result, dataset="x", context_size=32)
    first = _snapshot(source_row)
    assert len(first) == summary["activations"] > 0
    assert Feature.objects.filter(source=source_row).count() == result.d_sae
    service.write_dashboards(source=source_row, result=result, dataset="x", context_size=32)
    assert _snapshot(source_row) == first
    f0 = Feature.objects.get(source=source_row, index=0)
    assert f0.frac_nonzero == pytest.approx(float(result.frac_nonzero[0]))
    assert len(f0.topk_cos_sim_indices) == CFG.n_cos_sim
    assert len(f0.pos_str) == CFG.n_logits
    # the same example can sit in the top group and in quantile bins (same max_value): the top group first
    top = Activation.objects.filter(feature=f0).order_by("-max_value", "bin_min").first()
    assert (top.bin_min, top.bin_contains, len(top.tokens)) == (-1, -1, 32)
    source_row.refresh_from_db()
    assert (source_row.has_dashboards, source_row.num_prompts, source_row.num_tokens_in_prompt) == (
        True, 12, 32)
    assert Eval.objects.get(source=source_row, type="core").output["sparsity"]["l0"] > 0


def test_a_failed_rewrite_leaves_the_old_rows(source_row: Source, result: Any, monkeypatch: Any) -> None:
    service.write_dashboards(source=source_row, result=result, dataset="x", context_size=32)
    before = _snapshot(source_row)

    def broken(rows: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "_copy_activations", broken)
    with pytest.raises(RuntimeError):
        service.write_dashboards(source=source_row, result=result, dataset="y", context_size=32)
    assert _snapshot(source_row) == before
    source_row.refresh_from_db()
    assert source_row.dataset == "x"


def test_a_killed_job_resumes_from_its_checkpoint(source_row: Source, tiny_model: Any, id_source: Any,
                                                  text_dir: Path, monkeypatch: Any, settings: Any,
                                                  tmp_path: Path) -> None:
    from inference.tasks import dashboards as dashboard_tasks

    settings.NP_DATA_DIR = tmp_path
    registry = SourceRegistry([id_source])
    clean = service.start_dashboard_job(source=source_row, params=_params(text_dir), enqueue=False)
    assert dashboard_tasks.run_dashboard_job(clean.id, model=tiny_model, registry=registry)
    expected = _snapshot(source_row)

    job = service.start_dashboard_job(source=source_row, params=_params(text_dir), enqueue=False)
    real = dashboard_tasks._Progress.__call__

    def die_after_two_batches(self: Any, gen: Any, force: bool = False) -> None:
        real(self, gen, force)
        if gen.state.batches_done == 2:
            raise KeyboardInterrupt("killed")  # not an Exception: like a killed worker

    monkeypatch.setattr(dashboard_tasks._Progress, "__call__", die_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        dashboard_tasks.run_dashboard_job(job.id, model=tiny_model, registry=registry)
    job.refresh_from_db()
    assert job.checkpoint["batches_done"] == 2
    assert Path(job.checkpoint["path"], "state.pt").exists()
    Job.objects.filter(id=job.id).update(status=JobStatus.FAILED)  # what fail_stale_jobs does
    monkeypatch.setattr(dashboard_tasks._Progress, "__call__", real)
    assert requeue_job(job.id)
    lines: list[str] = []
    assert dashboard_tasks.run_dashboard_job(job.id, model=tiny_model, registry=registry, log=lines.append)
    assert any("resuming after batch 2" in line for line in lines)
    job.refresh_from_db()
    assert (job.status, job.done, job.total) == (JobStatus.DONE, 12, 12)
    assert _snapshot(source_row) == expected
    assert not Path(job.checkpoint["path"]).exists()
    assert not dashboard_tasks.run_dashboard_job(job.id, model=tiny_model, registry=registry)  # twice


def test_command_inline_runs_and_fails_clearly(source_row: Source, worker_config: Path,
                                               text_dir: Path, settings: Any, tmp_path: Path) -> None:
    settings.NP_DATA_DIR = tmp_path
    call_command("generate_dashboards", "tiny", "0-id", "--inline", "--config", str(worker_config),
                 "--dataset", f"file:{text_dir}", "--tokens", "256", "--context-size", "32",
                 "--batch-size", "4", "--no-umap")
    job = Job.objects.get(kind=JobKind.GENERATE_DASHBOARDS)
    assert job.status == JobStatus.DONE
    assert job.result["features"] == 128
    with pytest.raises(CommandError, match="no such file"):
        call_command("generate_dashboards", "tiny", "0-id", "--inline", "--config", str(worker_config),
                     "--dataset", f"file:{tmp_path}/missing", "--tokens", "256", "--context-size", "32")
    with pytest.raises(CommandError, match="no source"):
        call_command("generate_dashboards", "tiny", "9-nope")


def test_admin_action_creates_a_job_and_redirects(source_row: Source, admin_client: Any,
                                                  django_capture_on_commit_callbacks: Any,
                                                  monkeypatch: Any) -> None:
    sent: list[Any] = []
    monkeypatch.setattr(service, "enqueue_dashboard_job", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        resp = admin_client.post("/admin/features/source/", {
            "action": "generate_dashboards", "_selected_action": [source_row.pk]})
    job = Job.objects.get(kind=JobKind.GENERATE_DASHBOARDS)
    assert resp.status_code == 302
    assert resp["Location"] == f"/jobs/{job.id}/"
    assert sent == [job]
    assert (job.model_id_ref, job.source_ref, job.status) == ("tiny", "0-id", JobStatus.QUEUED)


def test_bulk_copy_rows_match_the_examples_exactly(source_row: Source, result: Any) -> None:
    """The binary COPY writer (built from columns) stores exactly what the Example objects say."""
    service.write_dashboards(source=source_row, result=result, dataset="x", context_size=32)
    examples = result.examples(0, result.d_sae)
    expected = []
    for exs in examples:
        strings = result.token_strings({t for e in exs for t in e.token_ids})
        expected += [(e.feature, e.sequence, [strings[t] for t in e.token_ids], e.values, e.max_value,
                      e.max_value_token_index, e.min_value, e.bin_min, e.bin_max, e.bin_contains,
                      e.qualifying_token_index) for e in exs]
    got = list(Activation.objects.filter(feature__source=source_row).order_by("id").values_list(
        "feature__index", "data_index", "tokens", "values", "max_value", "max_value_token_index",
        "min_value", "bin_min", "bin_max", "bin_contains", "qualifying_token_index"))
    assert _as_float32(got) == _as_float32(expected)  # real columns: compare as float32
    row = Activation.objects.filter(feature__source=source_row).first()
    assert (row.external_id, row.data_source, row.dfa_values) == ("", "generated", [])
    assert abs((row.created_at - Feature.objects.get(pk=row.feature_id).source.updated_at)
               .total_seconds()) < 1


def _as_float32(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    import numpy as np

    def conv(v: Any) -> Any:
        if isinstance(v, float):
            return float(np.float32(v))
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    return [tuple(conv(v) for v in row) for row in rows]
