"""The Celery app. Settings come from Django settings with the CELERY_ prefix."""

from __future__ import annotations

import os
import sys

from celery import Celery
from celery.signals import setup_logging, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuronpedia.settings.local")

app = Celery("neuronpedia")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["neuronpedia.jobs", "features", "transfer", "steering", "autointerp", "inference"])


def _fail_fast_on_bad_configuration() -> None:
    """Under the `celery` command, bad settings or unreachable services end in one line, exit 1."""
    from neuronpedia.lib.env import ConfigError  # noqa: PLC0415

    try:
        from django.conf import settings  # noqa: PLC0415

        _ = settings.CELERY_BROKER_URL
    except ConfigError as exc:
        sys.exit(f"error: {exc}")


if "celery" in os.path.basename(os.path.dirname(sys.argv[0])) + os.path.basename(sys.argv[0]):
    _fail_fast_on_bad_configuration()


@worker_init.connect
def _check_services(**_: object) -> None:
    from neuronpedia.lib.env import ConfigError  # noqa: PLC0415
    from neuronpedia.preflight import ensure_services  # noqa: PLC0415

    try:
        ensure_services()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        os._exit(1)


@setup_logging.connect
def _use_django_logging(**_: object) -> None:
    from logging.config import dictConfig  # noqa: PLC0415

    from django.conf import settings  # noqa: PLC0415

    dictConfig(settings.LOGGING)


# ---- autointerp CLI (owned by autointerp; keep this block delimited) -----------------------------
# Adds `celery -A neuronpedia autointerp ...` to Celery's click group whenever this app module is imported
# before the command line is resolved (app.start(), `python -m autointerp`). Click resolves sub-command
# names before it loads `-A`, so the stock `celery` script also needs the `celery.commands` entry point
# `autointerp = "autointerp.cli:autointerp"` once the project is pip-installed.
def _register_autointerp_cli() -> None:
    from autointerp.cli import register  # noqa: PLC0415

    register()


_register_autointerp_cli()
# ---- end autointerp CLI ---------------------------------------------------------------------------
