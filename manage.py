#!/usr/bin/env python
"""Django's command-line utility, with a one-line error for bad configuration."""

from __future__ import annotations

import os
import sys

# Commands that never touch the database or Redis.
OFFLINE_COMMANDS = {"help", "check", "makemigrations", "collectstatic", "spectacular", "version",
                    "--help", "-h", "--version", "diffsettings", "startapp"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuronpedia.settings.local")
    from neuronpedia.lib.env import ConfigError

    try:
        command = sys.argv[1] if len(sys.argv) > 1 else "help"
        if command not in OFFLINE_COMMANDS:
            from neuronpedia.preflight import ensure_services

            ensure_services(redis_needed=command in {"runserver", "shell", "np_worker"})
        from django.core.management import execute_from_command_line
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
