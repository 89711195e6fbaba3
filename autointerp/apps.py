from __future__ import annotations

import logging
from typing import Any

from django.apps import AppConfig


def _send_batch(job: Any) -> None:
    from autointerp.tasks import autointerp_batch_task  # noqa: PLC0415

    autointerp_batch_task.delay(job.id)


def _score_human_explanation(sender: Any, explanation: Any, **_: Any) -> None:
    """A person's new explanation gets its headline score, offline, once its transaction commits."""
    from django.db import transaction  # noqa: PLC0415

    from autointerp.tasks import score_headline_task  # noqa: PLC0415

    def send() -> None:
        try:
            score_headline_task.delay(explanation.pk)
        except Exception:  # the broker (Redis) is down: the explanation is kept, unscored for now
            logging.getLogger(__name__).warning(
                "explanation %s: could not queue its headline score (job queue unreachable); a "
                "scoring batch (celery -A neuronpedia autointerp score) scores it later",
                explanation.pk, exc_info=True)

    transaction.on_commit(send)


class AutointerpConfig(AppConfig):
    name = "autointerp"

    def ready(self) -> None:
        from neuronpedia.jobs import registry  # noqa: PLC0415
        from neuronpedia.jobs.models import JobKind  # noqa: PLC0415

        # a batch skips the features it already explained and scored: a re-run resumes
        registry.register(JobKind.AUTOINTERP_BATCH, _send_batch)
        from features.signals import human_explanation_created  # noqa: PLC0415

        human_explanation_created.connect(_score_human_explanation, dispatch_uid="autointerp-score-human")
