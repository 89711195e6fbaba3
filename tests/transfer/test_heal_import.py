"""An import whose worker is SIGKILLed in the middle of a file resumes by itself: Celery beat's sweeper
re-queues it, the next worker continues from the per-file checkpoints, and the source ends complete, with no
duplicate and nothing half-live meanwhile."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from django.db import connection

from features.models import Activation, Explanation, Feature, ImportedFile, Source
from neuronpedia.jobs.models import Job
from neuronpedia.lib.jobs import JobStatus
from neuronpedia.queues import Queue
from tests.support import HEAL_FAST, celery_worker, child_database_url, kill, stop, wait_until
from transfer import services as transfer_services
from transfer.importer.synthetic import SyntheticSpec, write_source

SPEC = SyntheticSpec(num_features=12, acts_per_feature=3, context=8, batch_size=4)
BLOCKED = "gpt2-small/6-res-jb/activations/batch-1.jsonl.gz"


def _query_one(sql: str, params: list | None = None) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)
def test_a_killed_import_is_requeued_by_beat_and_finishes_without_a_human(tmp_path: Path) -> None:
    write_source(tmp_path, SPEC)
    doomed = celery_worker(Queue.IMPORTS, name="doomed-imports", **HEAL_FAST)
    healer = None
    try:
        with psycopg.connect(child_database_url()) as blocker:
            # An uncommitted row with the staged checkpoint's key of activations/batch-1: the worker's
            # transaction for that file COPYs its rows, then waits on the unique index. We kill it there.
            blocker.execute(
                "INSERT INTO features_importedfile (path, staged, kind, base, status, size, sha256, "
                "rows_read, rows_written, row_keys, error, updated_at) "
                "VALUES (%s, true, 'activations', '', 'FAILED', 0, '', 0, 0, '[]', '', now())", [BLOCKED])
            job = transfer_services.start_import(model_id="gpt2-small", sources=["6-res-jb"],
                                               base=str(tmp_path))
            pid = wait_until(lambda: _query_one(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'INSERT INTO \"features_importedfile\"%%'"), "the worker to block",
                alive=(doomed,))
            kill(doomed)
            blocker.rollback()
        wait_until(lambda: not _query_one("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid[0]]),
                   "the killed transaction to end")
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING  # nobody marked it: its heartbeat just stopped
        assert not Source.objects.filter(model_id="gpt2-small", name="6-res-jb").exists()  # nothing half-live
        assert Activation.objects.count() == 12  # batch-0 staged; nothing of the killed file committed

        healer = celery_worker(Queue.DEFAULT, Queue.IMPORTS, name="healer", beat_dir=tmp_path, **HEAL_FAST)
        wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, "the import to finish on its own",
                   interval=0.2, alive=(healer,))
        job.refresh_from_db()
        assert job.status == JobStatus.DONE, f"{job.error}\n{stop(healer)}"
        assert job.generation == 2  # claimed by each worker: re-queued by the sweeper, not by a person
        assert job.result["sources"]["6-res-jb"]["ok"] is True
        counts = Feature.objects.count(), Activation.objects.count(), Explanation.objects.count()
        assert counts == (12, 36, 12)
        assert Activation.objects.values("external_id").distinct().count() == 36
        assert not Source.objects.filter(name="6-res-jb.staging").exists()
        assert not ImportedFile.objects.filter(staged=True).exists()
    finally:
        for proc in (doomed, healer):
            if proc is not None:
                stop(proc)
