"""The web side of inference: which workers are live, and calling them through their model's queue.

Inference workers register an InferenceHost row (with the sources they serve) and refresh its heartbeat
every settings.INFERENCE_HEARTBEAT_SECONDS. A host whose heartbeat is older than three intervals is not
live. Calls go through Celery to `inference.<model_id>` and wait for the result; when no live host
serves a model (or a source), the caller gets NoInferenceWorker with a message for the user instead of
a request stuck in a queue nobody reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from features.models import InferenceHost, Model, Source
from neuronpedia.queues import inference_queue

TASK_PREFIX = "inference_worker.tasks."


class InferenceError(Exception):
    """The worker refused the request (a limit, an unknown source...). `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class NoInferenceWorker(InferenceError):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=503)


def live_cutoff() -> Any:
    return timezone.now() - timedelta(seconds=3 * settings.INFERENCE_HEARTBEAT_SECONDS)


def live_hosts(model_id: str) -> QuerySet[InferenceHost]:
    return InferenceHost.objects.filter(model_id=model_id, heartbeat_at__gte=live_cutoff())


def live_source_names(model_id: str) -> set[str]:
    return set(Source.objects.filter(inference_hosts__in=live_hosts(model_id))
               .values_list("name", flat=True))


def register_host(*, name: str, model: Model, device: str, dtype: str,
                  source_names: Iterable[str], info: dict[str, Any] | None = None) -> InferenceHost:
    """Create or refresh the row of a starting worker. Safe to call again (upsert on name)."""
    with transaction.atomic():
        host, _ = InferenceHost.objects.update_or_create(
            name=name,
            defaults={"model": model, "queue": inference_queue(model.id), "device": device,
                      "dtype": dtype, "heartbeat_at": timezone.now(), "info": info or {}},
        )
        host.sources.set(Source.objects.filter(model=model, name__in=list(source_names)))
    return host


def heartbeat(name: str) -> bool:
    return InferenceHost.objects.filter(name=name).update(heartbeat_at=timezone.now()) == 1


def unregister_host(name: str) -> None:
    InferenceHost.objects.filter(name=name).delete()


def require_live(model_id: str, source_names: Iterable[str] = ()) -> None:
    """Raise NoInferenceWorker with a clear message unless a live worker serves all of these."""
    if not live_hosts(model_id).exists():
        raise NoInferenceWorker(
            f"no inference worker is serving model {model_id!r}; start one with "
            f"`python manage.py inference_worker --config <file>` (see README)")
    missing = set(source_names) - live_source_names(model_id)
    if missing:
        raise NoInferenceWorker(
            f"the inference worker of {model_id!r} does not serve {', '.join(sorted(missing))}")


def run_inference(model_id: str, operation: str, payload: dict[str, Any], *,
                  source_names: Iterable[str] = (), timeout: float = 120.0) -> dict[str, Any]:
    """Send `operation` to the model's queue and wait for its JSON result."""
    from neuronpedia.celery import app  # noqa: PLC0415

    require_live(model_id, source_names)
    result = app.send_task(TASK_PREFIX + operation, kwargs={"payload": payload},
                           queue=inference_queue(model_id))
    try:
        reply = result.get(timeout=timeout, propagate=True)
    except CeleryTimeoutError:
        result.revoke()
        raise InferenceError(f"inference timed out after {timeout:.0f} s", status=504) from None
    finally:
        result.forget()
    if not reply.get("ok"):
        raise InferenceError(reply.get("error", "inference failed"), status=reply.get("status", 400))
    return reply["result"]


def ensure_catalog_for_worker(*, model_id: str, layers: int, dimension: int, instruct: bool,
                              sources: list[dict[str, Any]]) -> Model:
    """Create the Model/SourceSet/Source rows a worker serves when they are missing (a model loaded by
    name or from a folder becomes browsable at once). Existing rows are left as they are."""
    from features.models import SourceSet, parse_source_id  # noqa: PLC0415

    with transaction.atomic():
        model, _ = Model.objects.get_or_create(
            id=model_id, defaults={"display_name": model_id, "layers": layers,
                                   "dimension": dimension, "instruct": instruct})
        for spec in sources:
            parsed = parse_source_id(spec["id"])
            source_set, _ = SourceSet.objects.get_or_create(model=model, name=parsed.set_name)
            Source.objects.get_or_create(
                model=model, name=spec["id"],
                defaults={"source_set": source_set, "layer": parsed.layer,
                          "hook_name": spec.get("hook_name", ""),
                          "num_features": spec.get("d_sae"),
                          "saelens_config": spec.get("config", {}),
                          "local_path": spec.get("path") or ""})
    return model
