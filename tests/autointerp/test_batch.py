"""Batch runs: resumable after a kill, transient retries, final errors stop the job, rate limits."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from click.testing import CliRunner

from autointerp.batch import BatchParams, RateLimiter, call_with_retries, start_autointerp_batch
from autointerp.cli import autointerp
from autointerp.llm import ProviderError
from autointerp.tasks import autointerp_batch_task
from features.models import Explanation, ExplanationScore, ScoreStatus
from neuronpedia.jobs.models import Job
from neuronpedia.jobs.services import requeue_job
from tests import factories
from tests.autointerp.conftest import CAT_TEXTS, add_examples, error_reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def cat_source(cat_feature: Any) -> Any:
    for index in range(20, 25):
        add_examples(factories.make_feature(cat_feature.source, index), CAT_TEXTS[:3], "cat")
    return cat_feature.source  # 8 features: the catalog's, 6 with cat examples, 1 with other text


def _params(source: Any, **kw: Any) -> BatchParams:
    return BatchParams(source_id=source.pk, model="fake-gpt", embed=False, backoff_s=0.01, **kw)


def test_start_enqueues_after_commit_with_json_arguments(
    fake_llm: Any, cat_source: Any, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    monkeypatch.setattr(autointerp_batch_task, "delay", lambda *a: sent.append(json.loads(json.dumps(a))))
    with django_capture_on_commit_callbacks(execute=True):
        job = start_autointerp_batch(params=_params(cat_source))
    assert sent == [[job.pk]]
    assert job.total == 8
    assert job.status == "QUEUED"
    assert autointerp_batch_task.queue == "default"


def test_batch_is_resumable_after_a_kill(
    fake_llm: Any, cat_source: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neuronpedia.jobs import services as jobs

    job = start_autointerp_batch(params=_params(cat_source, concurrency=1), run_now=False)
    real_progress = jobs.record_progress

    def killed_after_three(job_id: int, **kw: Any) -> None:
        if kw["done"] >= 3:
            jobs.cancel_job(job_id)  # the "kill": the job stops at this progress write
        real_progress(job_id, **kw)

    monkeypatch.setattr(jobs, "record_progress", killed_after_three)
    autointerp_batch_task(job.pk)
    job.refresh_from_db()
    first = Explanation.objects.filter(feature__source=cat_source).count()
    assert job.status == "CANCELLED"
    assert 3 <= first < 8
    assert requeue_job(job.pk)
    monkeypatch.setattr(jobs, "record_progress", real_progress)
    fake_llm.requests.clear()
    autointerp_batch_task(job.pk)
    job.refresh_from_db()
    assert job.status == "DONE", job.error
    assert job.result["skipped"] == first
    assert job.done == job.total == 8
    assert len(fake_llm.chat_requests) == 8 - first
    assert Explanation.objects.filter(feature__source=cat_source).count() == 8


def test_transient_errors_are_retried_and_final_errors_stop_the_job(fake_llm: Any, cat_source: Any) -> None:
    fake_llm.reply_sequence(error_reply(503, "overloaded"), error_reply(429, "slow", {"Retry-After": "0"}))
    job = start_autointerp_batch(params=_params(cat_source, concurrency=1), run_now=True)
    assert job.status == "DONE"
    assert job.result["succeeded"] == 8
    assert job.result["requests"] == 10
    other = factories.make_source(cat_source.model, 9)
    add_examples(factories.make_feature(other, 1), CAT_TEXTS[:2], "cat")
    fake_llm.script = lambda body: error_reply(402, "Insufficient credits")
    failed = start_autointerp_batch(params=_params(other), run_now=True)
    assert failed.status == "FAILED"
    assert "key exhausted (HTTP 402)" in failed.error


def test_score_batch_scores_each_explanation_once(fake_llm: Any, cat_source: Any) -> None:
    start_autointerp_batch(params=_params(cat_source), run_now=True)
    params = _params(cat_source, action="score", score_types=("eleuther_recall",))
    job = start_autointerp_batch(params=params, run_now=True)
    assert job.status == "DONE", job.error
    recall = ExplanationScore.objects.filter(status=ScoreStatus.DONE, score_type_id="eleuther_recall")
    assert recall.count() == 8, job.result
    # each new explanation also got its headline score (held-out embedding) when it was written
    headline = ExplanationScore.objects.filter(status=ScoreStatus.DONE, score_type_id="eleuther_embedding")
    assert headline.count() == 8
    again = start_autointerp_batch(params=params, run_now=True)
    assert again.result["skipped"] == 8
    assert again.result["requests"] == 0


def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter(rpm=1200)  # one per 50 ms
    started = time.monotonic()
    for _ in range(5):
        limiter.wait()
    assert time.monotonic() - started >= 0.19


def test_retries_stop_on_a_final_error() -> None:
    attempts: list[int] = []

    def fails() -> None:
        attempts.append(1)
        raise ProviderError("key rejected", transient=False)

    with pytest.raises(ProviderError):
        call_with_retries(fails, limiter=RateLimiter(0), max_retries=5, backoff_s=0)
    assert len(attempts) == 1


def test_cli_explain_runs_a_job(fake_llm: Any, cat_source: Any) -> None:
    result = CliRunner().invoke(
        autointerp,
        [
            "explain",
            "--source",
            f"gpt2-small/{cat_source.name}",
            "--model",
            "fake-gpt",
            "--sync",
            "--no-embed",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "DONE" in result.output
    assert "/jobs/" in result.output


def _celery_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autointerp", *args], capture_output=True, text=True, timeout=60
    )


def test_celery_subcommand_exit_codes() -> None:
    ok = _celery_cli("explainers")
    assert ok.returncode == 0
    assert "np_max-act-logits" in ok.stdout
    bad = _celery_cli("explain", "--explainer", "nope")
    assert bad.returncode == 2
    assert "Invalid value for '--explainer'" in bad.stderr
    missing = _celery_cli("explain")
    assert missing.returncode == 2
    assert "give either --source" in missing.stderr


def test_cli_without_an_llm_provider_is_a_usage_error(
        cat_source: Any, settings: Any) -> None:
    settings.NP_OPENAI_API_KEY = settings.NP_OPENAI_BASE_URL = ""
    result = CliRunner().invoke(autointerp, ["explain", "--source", f"gpt2-small/{cat_source.name}",
                                             "--model", "gpt-4o-mini", "--sync"])
    assert result.exit_code == 2, result.output
    assert "no LLM provider configured" in result.output
    assert not Job.objects.exists()
