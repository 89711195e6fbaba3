from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from features.models import Source
from transfer import services
from transfer.importer.cli import report, step_printer


class Command(BaseCommand):
    help = "Write a source in Neuronpedia's export layout (gzipped JSONL batches of 1,024 features)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model_id")
        parser.add_argument("source", help="source id, e.g. 6-res-jb")
        parser.add_argument("--out", help="output folder (default: NP_DATA_DIR/exports)")

    def handle(self, *args: Any, **options: Any) -> None:
        source = Source.objects.filter(model_id=options["model_id"], name=options["source"]).first()
        if source is None:
            raise CommandError(f"no source {options['model_id']}/{options['source']} in this database")
        job = services.start_export(source=source, folder=options["out"], enqueue=False)
        job = services.run_here(job, on_step=step_printer(self.stdout))
        report(job, self.stdout)
        if job.result:
            tables = ", ".join(f"{k} {v}" for k, v in job.result["tables"].items())
            self.stdout.write(f"wrote {job.result['path']} ({tables})")
