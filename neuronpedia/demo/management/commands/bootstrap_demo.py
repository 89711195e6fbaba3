"""Fill an empty instance with the offline demo (the data steps of `bin/np up`); idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from neuronpedia.demo.bootstrap import BootstrapError, BootstrapPlan, bootstrap_demo


class Command(BaseCommand):
    help = "Register the demo source, generate its dashboards and explain its first features."

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = BootstrapPlan()
        parser.add_argument("--tokens", type=int, default=defaults.tokens, help="dashboard token budget")
        parser.add_argument("--explain", type=int, default=defaults.explain,
                            help="features explained now with the offline explainer")
        parser.add_argument("--explain-rest", action="store_true", default=defaults.explain_rest,
                            help="queue a background job explaining every other feature (the default)")
        parser.add_argument("--no-explain-rest", dest="explain_rest", action="store_false",
                            help="do not queue the background job")
        parser.add_argument("--explain-llm", default=defaults.use_llm, choices=["auto", "always", "never"],
                            help="when the offline explainer asks SmolLM2 for a candidate (auto: when the "
                                 "examples share no dominant token)")
        parser.add_argument("--worker-timeout", type=float, default=defaults.worker_timeout)

    def handle(self, *args: Any, **options: Any) -> None:
        plan = BootstrapPlan(tokens=options["tokens"], explain=options["explain"],
                             explain_rest=options["explain_rest"], use_llm=options["explain_llm"],
                             worker_timeout=options["worker_timeout"])
        try:
            source = bootstrap_demo(plan, say=lambda line: self.stdout.write(f"  {line}"))
        except BootstrapError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"demo ready: /{source.model_id}/{source.name}/")
