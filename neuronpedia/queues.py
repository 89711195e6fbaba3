"""Every Celery queue name lives here.

default  fast CPU work (bookkeeping, embeddings of a few explanations)
imports  long I/O jobs (Neuronpedia export import/export)
inference.<model_id>  one queue per language model, consumed by the worker that holds that model
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Queue(StrEnum):
    DEFAULT = "default"
    IMPORTS = "imports"


INFERENCE_PREFIX = "inference."


def inference_queue(model_id: str) -> str:
    """The queue of the inference worker(s) serving `model_id`, e.g. `inference.gpt2-small`."""
    if not model_id or any(ch.isspace() for ch in model_id):
        raise ValueError(f"invalid model id for a queue name: {model_id!r}")
    return f"{INFERENCE_PREFIX}{model_id}"


# Task name prefix -> queue. Inference tasks are sent with an explicit `queue=inference_queue(...)`.
ROUTES: dict[str, str] = {
    "neuronpedia.jobs.tasks.": Queue.DEFAULT,
    "features.tasks.import_": Queue.IMPORTS,
    "features.tasks.export_": Queue.IMPORTS,
}


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None,
               **kw: Any) -> dict[str, str] | None:
    """Celery router (settings.CELERY_TASK_ROUTES): the queue of a task by its name prefix."""
    if options.get("queue"):
        return None
    for prefix, queue in ROUTES.items():
        if name.startswith(prefix):
            return {"queue": queue}
    return {"queue": Queue.DEFAULT}
