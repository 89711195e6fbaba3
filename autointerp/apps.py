from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _send_batch(job: Any) -> None:
    from autointerp.tasks import autointerp_batch_task  # noqa: PLC0415

    autointerp_batch_task.delay(job.id)


class AutointerpConfig(AppConfig):
    name = "autointerp"

    def ready(self) -> None:
        from neuronpedia.jobs import registry  # noqa: PLC0415
        from neuronpedia.jobs.models import JobKind  # noqa: PLC0415

        # a batch skips the features it already explained and scored: a re-run resumes
        registry.register(JobKind.AUTOINTERP_BATCH, _send_batch)
