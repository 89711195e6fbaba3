from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from transfer import services
from transfer.importer.cli import report, step_printer


class Command(BaseCommand):
    help = "Import the config catalogs (explanation types, models, score types) of a Neuronpedia export."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base", help="export folder or URL (default: NP_IMPORT_BASE)")

    def handle(self, *args: Any, **options: Any) -> None:
        job = services.start_config_import(base=options["base"], enqueue=False)
        report(services.run_here(job, on_step=step_printer(self.stdout)), self.stdout)
