"""The import/export tasks moved from features to transfer keep their Celery names (queued messages and the
imports-queue route find them), and the job kinds send them once the creating transaction commits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from neuronpedia.celery import app
from neuronpedia.queues import Queue, route_task
from transfer import services
from transfer.tasks import export_source_task, import_source_task

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("task", "name"), [(import_source_task, "features.tasks.import_source_task"),
                                            (export_source_task, "features.tasks.export_source_task")])
def test_moved_tasks_keep_their_names_and_the_imports_queue(task: Any, name: str) -> None:
    app.loader.import_default_modules()  # what a worker does at start: autodiscover the apps' tasks
    assert task.name == name
    assert app.tasks[name].run is task.run
    assert route_task(name, (), {}, {}) == {"queue": Queue.IMPORTS}


def test_import_is_sent_after_commit_with_json_arguments(
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    monkeypatch.setattr(import_source_task, "delay", lambda *a: sent.append(json.loads(json.dumps(a))))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = services.start_import(model_id="gpt2-small", sources=["6-res-jb"], base="/nowhere")
    assert sent == []  # nothing before the commit
    callbacks[0]()
    assert sent == [[job.pk]]


def test_export_is_sent_to_the_export_task(
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch, catalog: Any,
    tmp_path: Path,
) -> None:
    sent: list[Any] = []
    monkeypatch.setattr(export_source_task, "delay", lambda *a: sent.append(a))
    monkeypatch.setattr(import_source_task, "delay", lambda *a: pytest.fail("sent to the import task"))
    with django_capture_on_commit_callbacks(execute=True):
        job = services.start_export(source=catalog["source"], folder=str(tmp_path))
    assert sent == [(job.pk,)]
