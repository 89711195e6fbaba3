"""SIGKILL of a real `celery worker` in the middle of a file, then a restart: no duplicate, no gap, and no
half-imported source meanwhile (the live source is as before the import)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from features.models import Activation, Explanation, Feature, ImportedFile, Source
from neuronpedia.jobs import services as jobs
from neuronpedia.lib.jobs import JobStatus
from neuronpedia.queues import Queue
from tests.support import child_database_url
from transfer import services as transfer_services
from transfer.importer.synthetic import SyntheticSpec, write_source
from transfer.tasks import import_source_task

ROOT = Path(__file__).resolve().parents[2]
SPEC = SyntheticSpec(num_features=12, acts_per_feature=3, context=8, batch_size=4)
BLOCKED = "gpt2-small/6-res-jb/activations/batch-1.jsonl.gz"


def _conninfo() -> str:
    db = connection.settings_dict
    return (f"host={db['HOST']} port={db['PORT']} dbname={db['NAME']} user={db['USER']} "
            f"password={db['PASSWORD'] or ''}")


@pytest.fixture
def imports_worker() -> Iterator[subprocess.Popen]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "neuronpedia.settings.test",
           "DATABASE_URL": child_database_url()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "neuronpedia", "worker", "-Q", Queue.IMPORTS, "--pool", "solo",
         "--without-mingle", "--without-gossip", "-n", "pytest-imports@%h", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=15)


def _query_one(sql: str, params: list | None = None) -> tuple | None:
    with connection.cursor() as cursor:  # autocommit: a fresh pg_stat_activity snapshot each time
        cursor.execute(sql, params or [])
        return cursor.fetchone()


def _wait_for(condition, what: str, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _kill_while_loading(tmp_path: Path, worker: subprocess.Popen, staged_before: int):
    """Start an import, hold the worker inside its transaction for BLOCKED (after its COPY), SIGKILL it."""
    with psycopg.connect(_conninfo()) as blocker:
        # An uncommitted row with the staged checkpoint's unique (path, staged): the worker's transaction for
        # that file COPYs its rows, then waits on the unique index when it writes its checkpoint. We kill it.
        blocker.execute(
            "INSERT INTO features_importedfile (path, staged, kind, base, status, size, sha256, rows_read, "
            "rows_written, row_keys, error, updated_at) "
            "VALUES (%s, true, 'activations', '', 'FAILED', 0, '', 0, 0, '[]', '', now())", [BLOCKED])
        job = transfer_services.start_import(model_id="gpt2-small", sources=["6-res-jb"], base=str(tmp_path))
        pid = _wait_for(lambda: worker.poll() is not None or _query_one(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'INSERT INTO \"features_importedfile\"%%'"), "the worker to block")
        assert worker.poll() is None, worker.stdout.read()
        staged = Activation.objects.filter(feature__source__name="6-res-jb.staging").count()
        assert staged == staged_before  # activations/batch-0 committed to the staging copy; batch-1 in flight
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        blocker.rollback()
    _wait_for(lambda: not _query_one("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid[0]]),
              "the killed transaction to end")
    assert not ImportedFile.objects.filter(path=BLOCKED, staged=True).exists()
    return job


def _restart(job) -> None:
    jobs.fail_job(job.id, error="worker killed")  # what fail_stale_jobs does once the heartbeat is old
    assert jobs.requeue_job(job.id)
    import_source_task(job.id)  # the restart (same task body, new process state)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    assert job.result["sources"]["6-res-jb"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_sigkill_in_the_middle_of_a_file_then_restart_finishes_without_duplicates(
        tmp_path: Path, imports_worker: subprocess.Popen) -> None:
    write_source(tmp_path, SPEC)
    job = _kill_while_loading(tmp_path, imports_worker, staged_before=12)
    assert not Source.objects.filter(model_id="gpt2-small", name="6-res-jb").exists()  # nothing half-live
    assert Activation.objects.count() == 12  # nothing of the killed file was committed
    _restart(job)
    assert (Feature.objects.count(), Activation.objects.count(), Explanation.objects.count()) == (12, 36, 12)
    assert Activation.objects.values("external_id").distinct().count() == 36
    assert not Source.objects.filter(name="6-res-jb.staging").exists()


@pytest.mark.django_db(transaction=True)
def test_sigkill_during_a_reimport_leaves_the_live_source_as_it_was(
        tmp_path: Path, imports_worker: subprocess.Popen) -> None:
    write_source(tmp_path, SPEC)
    first = transfer_services.start_import(model_id="gpt2-small", sources=["6-res-jb"], base=str(tmp_path),
                                         enqueue=False)
    import_source_task(first.id)
    live = sorted(Activation.objects.values_list("id", "max_value"))
    write_source(tmp_path, SyntheticSpec(**{**SPEC.__dict__, "seed": 1}))  # the upstream export changed
    job = _kill_while_loading(tmp_path, imports_worker, staged_before=12)
    assert sorted(Activation.objects.filter(feature__source__name="6-res-jb").values_list(
        "id", "max_value")) == live
    _restart(job)
    assert Activation.objects.filter(feature__source__name="6-res-jb").count() == 36
    assert sorted(Activation.objects.values_list("max_value", flat=True)) != sorted(v for _, v in live)
