"""The Celery app. Settings come from Django settings with the CELERY_ prefix."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuronpedia.settings.local")

app = Celery("neuronpedia")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["neuronpedia.jobs", "features", "steering", "autointerp", "inference_worker"])


@setup_logging.connect
def _use_django_logging(**_: object) -> None:
    from logging.config import dictConfig  # noqa: PLC0415

    from django.conf import settings  # noqa: PLC0415

    dictConfig(settings.LOGGING)
