"""An autointerp batch whose worker is SIGKILLed mid-batch resumes by itself: Celery beat's sweeper
re-queues it, the next worker skips the features already explained, and each feature ends with exactly one
explanation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from autointerp.batch import BatchParams, start_autointerp_batch
from features.models import Explanation
from neuronpedia.jobs.models import Job
from neuronpedia.lib.jobs import JobStatus
from neuronpedia.queues import Queue
from tests import factories
from tests.autointerp.conftest import CAT_TEXTS, add_examples, smart_reply
from tests.support import HEAL_FAST, celery_worker, kill, stop, wait_until


@pytest.mark.django_db(transaction=True)
def test_a_killed_batch_is_requeued_by_beat_and_explains_each_feature_once(
        fake_llm: Any, cat_feature: Any, tmp_path: Path) -> None:
    source = cat_feature.source
    for index in range(20, 28):
        add_examples(factories.make_feature(source, index), CAT_TEXTS[:3], "cat")
    n_features = source.features.count()

    def slow(body: dict[str, Any]) -> Any:  # a slow provider: the kill lands mid-batch
        time.sleep(0.4)
        return smart_reply(body)

    fake_llm.script = slow
    params = BatchParams(source_id=source.pk, model="fake-gpt", embed=False, score=False, concurrency=1,
                         backoff_s=0.01)
    doomed = celery_worker(Queue.DEFAULT, name="doomed-autointerp", **HEAL_FAST)
    healer = None
    try:
        job = start_autointerp_batch(params=params)
        wait_until(lambda: Explanation.objects.filter(feature__source=source).count() >= 2,
                   "the first explanations", alive=(doomed,))
        kill(doomed)
        first = Explanation.objects.filter(feature__source=source).count()
        assert first < n_features
        assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING  # nobody marked it
        healer = celery_worker(Queue.DEFAULT, name="healer-autointerp", beat_dir=tmp_path, **HEAL_FAST)
        wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, "the batch to finish on its own",
                   interval=0.2, alive=(healer,))
        job.refresh_from_db()
        assert job.status == JobStatus.DONE, f"{job.error}\n{stop(healer)}"
        assert job.generation == 2  # claimed by each worker: re-queued by the sweeper, not by a person
        assert job.result["skipped"] >= first  # what the killed worker wrote was not explained again
        per_feature = [f.explanations.count() for f in source.features.all()]
        assert per_feature == [1] * n_features, per_feature
    finally:
        for proc in (doomed, healer):
            if proc is not None:
                stop(proc)
