"""Train a per-layer transcoder set (every layer of the model) for attribution graphs:

    python manage.py train_transcoders                       # demo set plt-demo, on the demo worker
    python manage.py train_transcoders --wait                # ... and follow its progress
    python manage.py train_transcoders --inline --steps 40   # here, in this process (model from --config)

Without --inline it queues a TRAIN_TRANSCODERS job on the model's inference queue (an unfinished job
for the same settings is reused, a failed or cancelled one resumed from its checkpoint). With --inline it
loads the model from the inference worker's configuration (--config; the demo configuration for the demo
model) and trains here, printing progress. Any failure exits non-zero with a message.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference.demo import DEMO_CONFIG, DEMO_MODEL_ID, DEMO_TRANSCODER_SET
from inference.transcoder_training import (
    ensure_training_job,
    start_training_job,
    training_params,
)
from neuronpedia.jobs.models import Job
from neuronpedia.jobs.services import follow_job
from neuronpedia.lib.jobs import JobStatus


class Command(BaseCommand):
    help = "Train (or resume) a transcoder set for every layer of a model, as a job with progress."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", default=DEMO_MODEL_ID, help="model id (default: the demo model)")
        parser.add_argument("--set", default=DEMO_TRANSCODER_SET, help="source set name, e.g. plt-demo")
        parser.add_argument("--steps", type=int, help="optimiser steps (sets the training tokens)")
        parser.add_argument("--tokens", type=int, help="training tokens")
        parser.add_argument("--width", type=int, help="features per layer (d_transcoder)")
        parser.add_argument("--k", type=int, help="active features per token while training (BatchTopK)")
        parser.add_argument("--lr", type=float, help="learning rate")
        parser.add_argument("--batch-seqs", type=int, help="contexts per step")
        parser.add_argument("--context-size", type=int, help="tokens per context")
        parser.add_argument("--eval-tokens", type=int, help="held-out tokens for the report")
        parser.add_argument("--splice-eval-tokens", type=int, help="tokens for the per-layer splice metrics")
        parser.add_argument("--model-dtype", choices=["float32", "bfloat16", "float16"],
                            help="dtype of the model forward that produces the activations")
        parser.add_argument("--inline", action="store_true", help="train in this process, not on a worker")
        parser.add_argument("--config", help="inference worker configuration, for --inline")
        parser.add_argument("--wait", action="store_true", help="follow the queued job until it ends")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            params = training_params(
                set_name=opts["set"], steps=opts["steps"], tokens=opts["tokens"], width=opts["width"],
                k=opts["k"], lr=opts["lr"], batch_seqs=opts["batch_seqs"], context_size=opts["context_size"],
                eval_tokens=opts["eval_tokens"], splice_eval_tokens=opts["splice_eval_tokens"],
                model_dtype=opts["model_dtype"])
        except (ValueError, TypeError) as exc:
            raise CommandError(f"bad training settings: {exc}") from exc
        if opts["inline"]:
            self._inline(opts["model"], params, opts["config"])
            return
        job, what = ensure_training_job(model_id=opts["model"], params=params)
        self.stdout.write(f"job {job.id} {what} on inference.{opts['model']}: /jobs/{job.id}/")
        if opts["wait"]:
            self._follow(job.id)

    def _inline(self, model_id: str, params: dict[str, Any], config_path: str | None) -> None:
        from inference.tasks.transcoders import run_training_job  # noqa: PLC0415

        if not config_path and model_id != DEMO_MODEL_ID:
            raise CommandError("--inline needs --config FILE (the inference worker's configuration)")
        model = self._load_model(config_path or str(DEMO_CONFIG), model_id)
        job = start_training_job(model_id=model_id, params=params, enqueue=False)
        self.stdout.write(f"job {job.id} running inline (/jobs/{job.id}/)")
        last = [0.0]

        def log(line: str) -> None:
            if time.monotonic() - last[0] >= 5 or "/" not in line.split(" ", 1)[0]:
                last[0] = time.monotonic()
                self.stdout.write(f"  {line}")

        try:
            run_training_job(job.id, model=model, log=log)
        except Exception as exc:
            raise CommandError(f"training failed (job {job.id}): {type(exc).__name__}: {exc}") from exc
        job.refresh_from_db()
        if job.status != JobStatus.DONE:
            raise CommandError(f"job {job.id} ended {job.status}: {job.error}")
        self._summary(job)

    @staticmethod
    def _load_model(config_path: str, model_id: str) -> Any:
        from inference_worker.config import load_config  # noqa: PLC0415
        from inference_worker.models import load_model  # noqa: PLC0415
        from inference_worker.runtime import pick_device  # noqa: PLC0415

        try:
            config = load_config(config_path)
        except (OSError, ValueError) as exc:
            raise CommandError(f"bad worker configuration {config_path}: {exc}") from exc
        if config.model_id != model_id:
            raise CommandError(f"{config_path} configures {config.model_id}, not {model_id}")
        try:
            return load_model(config, pick_device(config.device))
        except Exception as exc:
            raise CommandError(f"could not load {model_id}: {exc}") from exc

    def _summary(self, job: Job) -> None:
        r = job.result
        mean = r.get("mean", {})
        self.stdout.write(f"done in {r.get('seconds', {}).get('total_this_run', '?')} s: mean explained "
                          f"variance {mean.get('explained_variance')}, L0 {mean.get('l0')}, dead "
                          f"{mean.get('dead_fraction')}; all layers replaced: next-token agreement "
                          f"{r.get('replacement', {}).get('top1_agreement')}, KL "
                          f"{r.get('replacement', {}).get('kl')}")

    def _follow(self, job_id: int) -> None:
        job = follow_job(job_id, self.stdout.write, interval=2.0)
        if job.status != JobStatus.DONE:
            raise CommandError(f"job {job_id} ended {job.status}: {job.error}")
        self._summary(job)
