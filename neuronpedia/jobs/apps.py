from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _send_noop(job: Any) -> None:
    from neuronpedia.jobs.tasks import noop_job_task  # noqa: PLC0415

    params = job.params or {}
    noop_job_task.delay(job.id, steps=int(params.get("steps", 3)), delay=float(params.get("delay", 0.0)))


class JobsConfig(AppConfig):
    name = "neuronpedia.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from neuronpedia.jobs import registry  # noqa: PLC0415
        from neuronpedia.jobs.models import JobKind  # noqa: PLC0415

        registry.register(JobKind.NOOP, _send_noop)
