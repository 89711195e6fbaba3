"""Create the offline demo source (model + SAE + catalog rows).

    python manage.py create_demo_source            # use the committed SAE (inference_worker/demo/)
    python manage.py create_demo_source --retrain  # train it again here (~5 min on 2 cores)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference import demo


class Command(BaseCommand):
    help = "Register (and optionally re-train) the offline demo SAE of SmolLM2-135M-Instruct."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--retrain", action="store_true",
                            help="train the SAE again with SAE-Lens over the Brown corpus")
        parser.add_argument("--out", default=str(demo.DEMO_SAE_DIR), help="where the SAE is written")
        parser.add_argument("--tokens", type=int, default=262_144, help="training tokens")

    def handle(self, *args: Any, **options: Any) -> None:
        out = Path(options["out"])
        if options["retrain"] or not (out / "cfg.json").exists():
            self._train(out, options["tokens"])
        try:
            source = demo.register_demo_source(sae_dir=out)
        except (OSError, KeyError, ValueError) as exc:
            raise CommandError(f"cannot register the demo SAE in {out}: {exc}") from exc
        self.stdout.write(f"demo source ready: /{source.model_id}/{source.name}/ "
                          f"({source.num_features} features at {source.hook_name})")
        self.stdout.write(f"start its worker: python manage.py inference_worker --config "
                          f"{demo.DEMO_CONFIG.relative_to(demo.DEMO_CONFIG.parents[2])}")

    def _train(self, out: Path, tokens: int) -> None:
        from inference_worker.demo_sae import DemoSAEConfig, train_demo_sae  # noqa: PLC0415

        started = time.monotonic()
        self.stdout.write(f"training the demo SAE on {tokens:,} tokens (progress below)...")
        try:
            report = train_demo_sae(DemoSAEConfig(n_tokens=tokens), out_dir=out,
                                    progress=lambda msg: self.stdout.write(f"  {msg}"))
        except Exception as exc:
            raise CommandError(f"demo SAE training failed: {exc}") from exc
        self.stdout.write(f"trained in {time.monotonic() - started:.0f} s: explained variance "
                          f"{report.explained_variance:.3f}, dead {report.dead_fraction:.2%}")
