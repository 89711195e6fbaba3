"""`python -m autointerp ARGS` = `celery -A neuronpedia autointerp ARGS` (works without an entry point)."""

from __future__ import annotations

import sys

from celery.bin.celery import celery

import neuronpedia.celery  # noqa: F401  (registers the sub-command)

if __name__ == "__main__":
    sys.argv = ["celery", "-A", "neuronpedia", "autointerp", *sys.argv[1:]]
    sys.exit(celery.main(prog_name="celery", auto_envvar_prefix="CELERY"))
