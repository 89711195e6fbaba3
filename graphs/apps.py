from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _send_graph(job: Any) -> None:
    from graphs.services import enqueue_graph_job  # noqa: PLC0415

    enqueue_graph_job(job)


class GraphsConfig(AppConfig):
    name = "graphs"
    verbose_name = "Attribution graphs"

    def ready(self) -> None:
        from neuronpedia.jobs import registry  # noqa: PLC0415
        from neuronpedia.jobs.models import JobKind  # noqa: PLC0415

        # a graph job recomputes from its parameters (store_generated_graph overwrites)
        registry.register(JobKind.GENERATE_GRAPH, _send_graph)
