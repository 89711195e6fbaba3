from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _send_graph(job: Any) -> None:
    from graphs.services import enqueue_graph_job  # noqa: PLC0415

    enqueue_graph_job(job)


def _send_training(job: Any) -> None:
    from inference_worker.protocol import TRAIN_TRANSCODERS_TASK  # noqa: PLC0415
    from neuronpedia.celery import app  # noqa: PLC0415
    from neuronpedia.queues import inference_queue  # noqa: PLC0415

    app.send_task(TRAIN_TRANSCODERS_TASK, kwargs={"job_id": job.id},
                  queue=inference_queue(job.model_id_ref))


class GraphsConfig(AppConfig):
    name = "graphs"
    verbose_name = "Attribution graphs"

    def ready(self) -> None:
        from neuronpedia.jobs import registry  # noqa: PLC0415
        from neuronpedia.jobs.models import JobKind  # noqa: PLC0415

        # a graph job recomputes from its parameters (store_generated_graph overwrites); training resumes
        # from its checkpoint
        registry.register(JobKind.GENERATE_GRAPH, _send_graph)
        registry.register(JobKind.TRAIN_TRANSCODERS, _send_training)
