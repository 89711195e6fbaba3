from __future__ import annotations

from django.apps import AppConfig


class FeaturesConfig(AppConfig):
    name = "features"
    verbose_name = "Catalog and dashboards"

    def ready(self) -> None:
        # importing it registers the task with Celery too (a worker of the default queue runs it)
        from features import similar_jobs  # noqa: PLC0415
        from neuronpedia.jobs import registry  # noqa: PLC0415
        from neuronpedia.jobs.models import JobKind  # noqa: PLC0415

        # cross-source similar features resume after the sources their checkpoint lists as done
        registry.register(JobKind.COMPUTE_SIMILAR, similar_jobs.send_similar_job)
