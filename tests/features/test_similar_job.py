"""Cross-source similar features as a tracked job (issue 18): a real Celery worker runs it end to end, the
stale-job sweeper resumes a killed run from its per-source checkpoint, re-runs replace rows, a model with
too few decoders fails with the reason, and only staff can start it (POST, CSRF) from the model and feature
pages."""

from __future__ import annotations

import html
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from features import similar
from features.models import CrossSourceSimilarity, Source
from features.similar_jobs import SimilarParams, run_similar_job, start_similar_job
from neuronpedia.jobs import registry
from neuronpedia.jobs import services as jobs
from neuronpedia.jobs.models import Job, JobKind
from neuronpedia.lib.jobs import JobStatus
from neuronpedia.queues import Queue
from tests.features.test_browse_pages import make_demo_like
from tests.support import HEAL_FAST, celery_worker, stop, wait_until

PERM = [3, 0, 7, 1, 6, 2, 5, 4]  # layer 3's decoder row j is layer 1's row PERM[j], plus a little noise


def give_weights(tmp_path: Path, sources: list[Source]) -> None:
    """SAE-Lens folders with W_dec for the demo-like sources: layer 3's features match layer 1's permuted."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(0)
    first = torch.randn(8, 16, generator=gen)
    second = first[torch.tensor(PERM)] + 0.01 * torch.randn(8, 16, generator=gen)
    for source, w_dec in zip(sources, (first, second), strict=True):
        folder = tmp_path / source.name
        folder.mkdir()
        save_file({"W_dec": w_dec.contiguous()}, str(folder / "sae_weights.safetensors"))
        source.local_path = str(folder)
        source.save()


@pytest.fixture
def weighted(db: None, tmp_path: Path) -> dict[str, Any]:
    demo = make_demo_like()
    give_weights(tmp_path, demo["sources"])
    return demo


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Jobs the registry would put on the queue (no broker, no worker)."""
    ids: list[int] = []
    monkeypatch.setitem(registry._TYPES, JobKind.COMPUTE_SIMILAR,
                        registry.JobType(JobKind.COMPUTE_SIMILAR, lambda job: ids.append(job.id)))
    return ids


def _run_inline(params: SimilarParams | None = None, model_id: str = "tiny-lm") -> Job:
    job = start_similar_job(model_id=model_id, params=params, enqueue=False)
    assert jobs.claim_job(job.id)
    run_similar_job(job.id)
    return Job.objects.get(id=job.id)


def _neighbours(source_name: str, index: int) -> list[int]:
    return CrossSourceSimilarity.objects.get(feature__source__name=source_name, feature__index=index,
                                             other_source__name="1-res-demo").indices


# --- the job body ------------------------------------------------------------------------------------

def test_the_job_stores_each_features_neighbours_with_progress_and_a_summary(weighted) -> None:
    job = _run_inline(SimilarParams(top_k=3))
    assert job.status == JobStatus.DONE, job.error
    assert (job.done, job.total) == (2, 2)  # one chunk of each source against its one partner
    assert job.checkpoint["sources_done"] == ["1-res-demo", "3-res-demo"]
    assert job.result["rows"] == CrossSourceSimilarity.objects.count() == 16
    assert job.result["pairs"] == ["1-res-demo->3-res-demo", "3-res-demo->1-res-demo"]
    assert [_neighbours("3-res-demo", j)[0] for j in range(8)] == PERM


def test_rerunning_replaces_the_models_rows_and_never_duplicates(weighted) -> None:
    _run_inline(SimilarParams(top_k=3))
    one, three = weighted["sources"]
    stale = CrossSourceSimilarity.objects.filter(other_source=three).first()
    gone = Source.objects.create(model=one.model, source_set=one.source_set, name="2-res-demo", layer=2)
    CrossSourceSimilarity.objects.create(feature=stale.feature, other_source=gone, indices=[1], values=[0.5])
    job = _run_inline(SimilarParams(top_k=2))
    assert job.status == JobStatus.DONE, job.error
    assert CrossSourceSimilarity.objects.count() == 16  # the row against a source without weights is gone
    assert {len(r.indices) for r in CrossSourceSimilarity.objects.all()} == {2}  # replaced, not appended
    assert job.result["skipped_without_weights"] == ["2-res-demo"]


def test_a_resumed_job_skips_the_sources_its_checkpoint_lists(weighted) -> None:
    job = start_similar_job(model_id="tiny-lm", params=SimilarParams(top_k=3), enqueue=False)
    assert jobs.claim_job(job.id)
    jobs.record_progress(job.id, done=1, total=2, checkpoint={"sources_done": ["1-res-demo"]})
    jobs.fail_job(job.id, error="the worker was killed")
    assert jobs.requeue_job(job.id)
    assert jobs.claim_job(job.id)
    run_similar_job(job.id)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    assert job.result["resumed_after_sources"] == 1
    assert job.done == job.total == 2
    # only layer 3's rows were computed by the resumed run; layer 1 was done before it
    computed = CrossSourceSimilarity.objects.values_list("feature__source__name", flat=True)
    assert set(computed) == {"3-res-demo"}


def test_a_model_with_fewer_than_two_decoders_fails_with_the_reason(weighted) -> None:
    three = weighted["sources"][1]
    three.local_path = ""
    three.save()
    job = _run_inline()
    assert job.status == JobStatus.FAILED
    assert "1 source(s) with decoder weights" in job.error
    assert "3-res-demo" in job.error  # named as the source without weights
    assert CrossSourceSimilarity.objects.count() == 0


def test_an_unknown_source_name_fails_with_the_reason(weighted) -> None:
    job = _run_inline(SimilarParams(sources=("9-nope",)))
    assert (job.status, job.error) == (JobStatus.FAILED, "tiny-lm has no source named 9-nope")


def test_the_plan_holds_the_sources_with_decoders_and_partners(weighted) -> None:
    plan = similar.plan_similar(model_id="tiny-lm")
    assert [d.source.name for d in plan.wanted] == ["1-res-demo", "3-res-demo"]
    assert plan.total == 2
    with pytest.raises(similar.NothingToCompare, match="no source named"):
        similar.plan_similar(model_id="tiny-lm", source_names=["0-x"])


# --- starting it: service, command, pages --------------------------------------------------------------

def test_starting_twice_queues_one_job_sent_on_commit(weighted, sent,
                                                       django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = start_similar_job(model_id="tiny-lm")
        second = start_similar_job(model_id="tiny-lm")
    assert first.id == second.id
    assert sent == [first.id]
    assert (first.kind, first.status) == (JobKind.COMPUTE_SIMILAR, JobStatus.QUEUED)
    assert first.model_id_ref == "tiny-lm"
    json.dumps(first.params)  # task arguments and params survive JSON


def test_the_command_queues_the_job_by_default(weighted, capsys) -> None:
    call_command("compute_similar_features", "tiny-lm", "--top-k", "4")
    job = Job.objects.get(kind=JobKind.COMPUTE_SIMILAR)
    assert (job.status, job.params) == (JobStatus.QUEUED, {"sources": [], "top_k": 4})
    assert f"/jobs/{job.id}/" in capsys.readouterr().out
    assert CrossSourceSimilarity.objects.count() == 0  # a worker computes them, not the command


def test_the_command_runs_inline_and_prints_the_result(weighted, capsys) -> None:
    call_command("compute_similar_features", "tiny-lm", "--inline", "--top-k", "3")
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1])["rows"] == 16
    assert "3-res-demo against 1-res-demo" in out  # progress lines
    with pytest.raises(CommandError, match="no source named 9-x"):
        call_command("compute_similar_features", "tiny-lm", "--inline", "--source", "9-x")
    with pytest.raises(CommandError, match="top-k"):
        call_command("compute_similar_features", "tiny-lm", "--top-k", "0")


def test_only_staff_can_start_the_job(client, weighted, alice, admin_user, sent,
                                      django_capture_on_commit_callbacks) -> None:
    url = "/tiny-lm/similar-features/compute"
    assert client.post(url).status_code == 302  # anonymous: to the admin login
    client.force_login(alice)
    response = client.post(url)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert not Job.objects.filter(kind=JobKind.COMPUTE_SIMILAR).exists()
    client.force_login(admin_user)
    assert client.get(url).status_code == 405
    assert client.post("/no-such-model/similar-features/compute").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    job = Job.objects.get(kind=JobKind.COMPUTE_SIMILAR)
    assert response["Location"] == f"/jobs/{job.id}/"
    assert (job.requested_by, sent) == (admin_user, [job.id])


def test_the_start_button_needs_a_csrf_token(weighted, admin_user) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post("/tiny-lm/similar-features/compute").status_code == 403
    page = client.get("/tiny-lm/").content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    response = client.post("/tiny-lm/similar-features/compute", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302


def test_the_model_page_shows_the_button_to_staff_only(client, weighted, alice, admin_user) -> None:
    assert 'id="similar-compute"' not in client.get("/tiny-lm/").content.decode()
    client.force_login(alice)
    assert 'id="similar-compute"' not in client.get("/tiny-lm/").content.decode()
    client.force_login(admin_user)
    body = client.get("/tiny-lm/").content.decode()
    assert 'action="/tiny-lm/similar-features/compute"' in body


def test_the_empty_similar_card_says_how_to_get_them(client, weighted, admin_user) -> None:
    url = "/tiny-lm/3-res-demo/5/panel/extras"
    body = html.unescape(client.get(url).content.decode())
    assert "Staff can compute them" in body
    assert 'id="similar-compute"' not in body
    client.force_login(admin_user)
    assert 'action="/tiny-lm/similar-features/compute"' in client.get(url).content.decode()
    _run_inline(SimilarParams(top_k=3))
    body = client.get(url).content.decode()
    assert 'id="similar-empty"' not in body
    assert f'href="/tiny-lm/1-res-demo/{PERM[5]}"' in body


def test_the_job_page_shows_the_result(client, weighted, admin_user) -> None:
    job = _run_inline(SimilarParams(top_k=3))
    client.force_login(admin_user)
    body = client.get(f"/jobs/{job.id}/").content.decode()
    assert "Compute cross-source similar features" in body
    assert 'id="similar-result"' in body
    assert "1-res-demo, 3-res-demo" in body


# --- a real worker ---------------------------------------------------------------------------------

def _wait_finished(job: Job, worker: Any) -> Job:
    wait_until(lambda: Job.objects.get(id=job.id).is_finished, f"job {job.id} to finish", timeout=240,
               interval=0.2, alive=(worker,))
    return Job.objects.get(id=job.id)


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_job_end_to_end(tmp_path: Path) -> None:
    demo = make_demo_like()
    give_weights(tmp_path, demo["sources"])
    worker = celery_worker(Queue.DEFAULT, name="similar")
    try:
        job = start_similar_job(model_id="tiny-lm", params=SimilarParams(top_k=3))  # sent: autocommit
        job = _wait_finished(job, worker)
        assert job.status == JobStatus.DONE, f"{job.error}\n{stop(worker)}"
    finally:
        stop(worker)
    assert job.result["rows"] == CrossSourceSimilarity.objects.count() == 16
    assert [_neighbours("3-res-demo", j)[0] for j in range(8)] == PERM


@pytest.mark.django_db(transaction=True)
def test_a_killed_run_is_resumed_by_the_sweeper_from_its_checkpoint(tmp_path: Path) -> None:
    demo = make_demo_like()
    give_weights(tmp_path, demo["sources"])
    job = start_similar_job(model_id="tiny-lm", params=SimilarParams(top_k=3), enqueue=False)
    # the first run computed layer 1, wrote its checkpoint, and its worker died (the heartbeat stopped)
    assert jobs.claim_job(job.id)
    plan = similar.plan_similar(model_id="tiny-lm")
    similar.compute_source(plan, plan.wanted[0], top_k=3)
    jobs.record_progress(job.id, done=1, total=2, checkpoint={"sources_done": ["1-res-demo"]})
    first_rows = dict(CrossSourceSimilarity.objects.values_list("id", "computed_at"))
    Job.objects.filter(id=job.id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    worker = celery_worker(Queue.DEFAULT, name="similar-healer", beat_dir=tmp_path, **HEAL_FAST)
    try:
        job = _wait_finished(job, worker)
        assert job.status == JobStatus.DONE, f"{job.error}\n{stop(worker)}"
    finally:
        stop(worker)
    assert job.generation == 2  # re-queued by the sweeper, claimed again by the worker
    assert job.result["resumed_after_sources"] == 1
    assert CrossSourceSimilarity.objects.count() == 16
    # layer 1's rows are the first run's, untouched: the resumed run skipped that source
    assert dict(CrossSourceSimilarity.objects.filter(id__in=first_rows)
                .values_list("id", "computed_at")) == first_rows
