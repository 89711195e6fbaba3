"""Train the demo transcoders (if needed), enter them in the catalog and queue their dashboards; what
`bin/np up` runs in the background once the instance is ready (NP_DEMO_TRANSCODERS=0 skips it).
Idempotent: a finished set is reused, a stopped job resumed, layers with dashboards skipped."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from neuronpedia.demo.bootstrap import BootstrapError, TranscoderPlan, bootstrap_transcoders


class Command(BaseCommand):
    help = "Train the demo transcoder set through its job, register it, queue its dashboards."

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = TranscoderPlan()
        parser.add_argument("--dashboard-tokens", type=int, default=defaults.dashboard_tokens,
                            help="dashboard tokens per layer")
        parser.add_argument("--no-dashboards", dest="dashboards", action="store_false")
        parser.add_argument("--wait-dashboards", action="store_true", help="follow the dashboard jobs")

    def handle(self, *args: Any, **options: Any) -> None:
        plan = TranscoderPlan(dashboard_tokens=options["dashboard_tokens"], dashboards=options["dashboards"],
                              wait_dashboards=options["wait_dashboards"])
        try:
            sources = bootstrap_transcoders(plan, say=lambda line: self.stdout.write(f"  {line}"))
        except (BootstrapError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"transcoders ready: {len(sources)} sources")
