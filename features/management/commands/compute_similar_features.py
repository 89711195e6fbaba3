"""Compute cross-source similar features (decoder cos-sim) for a model: `manage.py compute_similar_features
MODEL [--source NAME ...] [--top-k 10]`."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from features.similar import compute_cross_source_similar


class Command(BaseCommand):
    help = "Store each feature's top-k decoder cos-sim neighbours in the other sources of its model."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model")
        parser.add_argument("--source", action="append", dest="sources", default=None)
        parser.add_argument("--top-k", type=int, default=10)

    def handle(self, *args: Any, **options: Any) -> None:
        result = compute_cross_source_similar(model_id=options["model"], source_names=options["sources"],
                                              top_k=options["top_k"])
        self.stdout.write(json.dumps(result))
