"""Generate feature dashboards for one source:

    python manage.py generate_dashboards smollm2-135m-instruct 15-res-demo --tokens 200000
    python manage.py generate_dashboards tiny 0-id --inline --config worker.json --tokens 4096

Without --inline it creates the job and sends it to the model's inference worker (`--wait` follows its
progress). With --inline it runs in this process (model and sources from --config, the inference
worker's configuration file) and prints progress. A failure exits with a non-zero status and a message.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from features.models import Source
from inference.dashboards import DashboardParams, start_dashboard_job
from neuronpedia.jobs.services import follow_job
from neuronpedia.lib.jobs import JobStatus


class Command(BaseCommand):
    help = "Generate dashboards (top activations, densities, logits, cos-sim, UMAP, evals) for a source."

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = DashboardParams()
        parser.add_argument("model", help="model id, e.g. smollm2-135m-instruct")
        parser.add_argument("source", help="source id, e.g. 15-res-demo")
        parser.add_argument("--dataset", default=defaults.dataset,
                            help="corpus:brown | corpus:shakespeare | file:/path | hf:name[:split[:col]]")
        parser.add_argument("--tokens", type=int, default=defaults.n_tokens, help="token budget")
        parser.add_argument("--context-size", type=int, default=defaults.context_size)
        parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
        parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
        parser.add_argument("--no-umap", action="store_true")
        parser.add_argument("--inline", action="store_true", help="run here, without a worker")
        parser.add_argument("--config", help="worker configuration (.env/.json) for --inline")
        parser.add_argument("--wait", action="store_true", help="follow the queued job until it ends")

    def handle(self, *args: Any, **opts: Any) -> None:
        source = Source.objects.filter(model_id=opts["model"], name=opts["source"]).first()
        if source is None:
            raise CommandError(f"no source {opts['model']}/{opts['source']} in the catalog")
        try:
            params = DashboardParams(dataset=opts["dataset"], n_tokens=opts["tokens"],
                                     context_size=opts["context_size"], batch_size=opts["batch_size"],
                                     checkpoint_every=opts["checkpoint_every"], umap=not opts["no_umap"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if opts["inline"]:
            self._inline(source, params, opts["config"])
            return
        job = start_dashboard_job(source=source, params=params)
        self.stdout.write(f"job {job.id} queued on inference.{source.model_id}: /jobs/{job.id}/")
        if opts["wait"]:
            self._follow(job.id)

    def _inline(self, source: Source, params: DashboardParams, config_path: str | None) -> None:
        from inference.tasks.dashboards import run_dashboard_job  # noqa: PLC0415

        if not config_path:
            raise CommandError("--inline needs --config FILE (the inference worker's configuration)")
        worker = self._load_worker(config_path)
        job = start_dashboard_job(source=source, params=params, enqueue=False)
        self.stdout.write(f"job {job.id} running inline")
        try:
            run_dashboard_job(job.id, model=worker.model, registry=worker.registry,
                              log=lambda msg: self.stdout.write(msg))
        except Exception as exc:
            raise CommandError(f"dashboard generation failed (job {job.id}): {exc}") from exc
        job.refresh_from_db()
        if job.status != JobStatus.DONE:
            raise CommandError(f"job {job.id} ended {job.status}: {job.error}")

    @staticmethod
    def _load_worker(config_path: str) -> Any:
        from inference_worker.config import load_config  # noqa: PLC0415
        from inference_worker.runtime import get_worker  # noqa: PLC0415

        try:
            return get_worker(load_config(config_path))
        except Exception as exc:
            raise CommandError(f"could not load the model or sources from {config_path}: {exc}") from exc

    def _follow(self, job_id: int) -> None:
        job = follow_job(job_id, self.stdout.write, interval=1.0)
        if job.status != JobStatus.DONE:
            raise CommandError(f"job {job_id} ended {job.status}: {job.error}")
