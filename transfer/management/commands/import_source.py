from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from transfer import services
from transfer.importer.catalog import list_sets
from transfer.importer.cli import report, step_printer
from transfer.importer.errors import ImportSourceError
from transfer.importer.storage import open_store


class Command(BaseCommand):
    help = ("Import sources from a Neuronpedia export (folder or http(s) base; default NP_IMPORT_BASE). "
            "Resumable: files already imported with the same sha256 are skipped.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model_id", help="e.g. gpt2-small")
        parser.add_argument("sources", nargs="*", help="source ids, e.g. 6-res-jb")
        parser.add_argument("--set", dest="set_name", help="import every source of this set, e.g. res-jb")
        parser.add_argument("--base", help="export folder or URL (default: NP_IMPORT_BASE)")
        parser.add_argument("--force", action="store_true", help="re-import files even when unchanged")
        parser.add_argument("--list", action="store_true", help="list the sets and sources at the base")

    def handle(self, *args: Any, **options: Any) -> None:
        base = options["base"] or services.import_base()
        try:
            if options["list"]:
                for entry in list_sets(open_store(base), options["model_id"]):
                    self.stdout.write(f"{entry.name}: {' '.join(s.name for s in entry.sources)}")
                return
            sources = list(options["sources"])
            if options["set_name"]:
                sources += [s.name for e in list_sets(open_store(base), options["model_id"])
                            if e.name == options["set_name"] for s in e.sources]
        except ImportSourceError as exc:
            raise CommandError(str(exc)) from None
        if not sources:
            raise CommandError("name at least one source (or --set with sources at the base)")
        job = services.start_import(model_id=options["model_id"], sources=sources, base=base,
                                           force=options["force"], enqueue=False)
        self.stdout.write(f"job #{job.id}: importing {', '.join(sources)} from {base}")
        report(services.run_here(job, on_step=step_printer(self.stdout)), self.stdout)
