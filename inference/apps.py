from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _send_dashboards(job: Any) -> None:
    from inference.dashboards import enqueue_dashboard_job  # noqa: PLC0415

    enqueue_dashboard_job(job)


def _send_training(job: Any) -> None:
    from inference.transcoder_training import enqueue_training_job  # noqa: PLC0415

    enqueue_training_job(job)


class InferenceConfig(AppConfig):
    name = "inference"
    verbose_name = "Inference workers"

    def ready(self) -> None:
        from neuronpedia.jobs import registry  # noqa: PLC0415
        from neuronpedia.jobs.models import JobKind  # noqa: PLC0415

        # dashboards and transcoder training resume from the worker's checkpoint
        registry.register(JobKind.GENERATE_DASHBOARDS, _send_dashboards)
        registry.register(JobKind.TRAIN_TRANSCODERS, _send_training)
