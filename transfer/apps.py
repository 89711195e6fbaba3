from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _send_import(job: Any) -> None:
    from transfer.tasks import import_source_task  # noqa: PLC0415 - tasks load models: not before ready()

    import_source_task.delay(job.id)


def _send_export(job: Any) -> None:
    from transfer.tasks import export_source_task  # noqa: PLC0415

    export_source_task.delay(job.id)


class TransferConfig(AppConfig):
    """Neuronpedia's export format: import (admin panel, commands, imports queue) and export."""

    name = "transfer"
    verbose_name = "Neuronpedia import and export"

    def ready(self) -> None:
        from neuronpedia.jobs import registry  # noqa: PLC0415
        from neuronpedia.jobs.models import JobKind  # noqa: PLC0415

        # imports resume from their per-file checkpoints, exports rewrite whole files
        registry.register(JobKind.IMPORT_SOURCE, _send_import)
        registry.register(JobKind.EXPORT_SOURCE, _send_export)
