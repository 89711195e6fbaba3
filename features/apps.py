from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _send_import(job: Any) -> None:
    from features.tasks import import_source_task  # noqa: PLC0415

    import_source_task.delay(job.id)


def _send_export(job: Any) -> None:
    from features.tasks import export_source_task  # noqa: PLC0415

    export_source_task.delay(job.id)


class FeaturesConfig(AppConfig):
    name = "features"
    verbose_name = "Catalog and dashboards"

    def ready(self) -> None:
        # importing it registers the task with Celery too (a worker of the default queue runs it)
        from features import similar_jobs  # noqa: PLC0415
        from neuronpedia.jobs import registry  # noqa: PLC0415
        from neuronpedia.jobs.models import JobKind  # noqa: PLC0415

        # imports resume from their per-file checkpoints, exports rewrite whole files
        registry.register(JobKind.IMPORT_SOURCE, _send_import)
        registry.register(JobKind.EXPORT_SOURCE, _send_export)
        # cross-source similar features resume after the sources their checkpoint lists as done
        registry.register(JobKind.COMPUTE_SIMILAR, similar_jobs.send_similar_job)
