"""Start an inference worker for one model configuration:

    python manage.py inference_worker --config inference_worker/configs/smollm2-135m-instruct.demo.env

It loads the model and its sources (cuda when present), registers an InferenceHost row with the sources
it serves (database heartbeat every INFERENCE_HEARTBEAT_SECONDS, for the catalog) and keeps its Redis
liveness key alive (every INFERENCE_LIVENESS_TTL_SECONDS / 4, so a killed worker is known dead within
the TTL), then consumes `inference.<model_id>` with a solo pool and no prefetch (a waiting message stays
in the queue, not in this process). Ctrl-C / SIGTERM unregisters it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from inference import client as inference
from neuronpedia.queues import inference_queue


class Command(BaseCommand):
    help = "Run an inference worker (model + SAEs) consuming inference.<model_id>."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config", required=True, help=".env or .json worker configuration")
        parser.add_argument("--name", default="", help="worker name (default: model@host-pid)")
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args: Any, **options: Any) -> None:
        from inference.tasks import operations as tasks  # noqa: PLC0415
        from inference_worker.config import load_config  # noqa: PLC0415

        path = os.path.abspath(options["config"])
        try:
            config = load_config(path)
        except (OSError, ValueError) as exc:
            raise CommandError(f"bad worker configuration {options['config']}: {exc}") from exc
        os.environ[tasks.CONFIG_ENV] = path
        self.stdout.write(f"loading {config.model_id} and {len(config.source_ids)} source(s)...")
        started = time.monotonic()
        try:
            worker = tasks.loaded()
        except Exception as exc:
            raise CommandError(f"could not load the model or its sources: {exc}") from exc
        self.stdout.write(f"loaded on {worker.device} in {time.monotonic() - started:.1f} s")
        name = options["name"] or f"{config.model_id}@{socket.gethostname()}-{os.getpid()}"
        tasks._STATE["name"] = name
        self._register(name, worker)
        stop = threading.Event()
        threading.Thread(target=self._beat, args=(name, worker, stop), daemon=True).start()
        threading.Thread(target=self._alive, args=(name, worker, stop), daemon=True).start()
        try:
            self._consume(name, inference_queue(config.model_id), options["loglevel"])
        finally:
            stop.set()
            inference.unregister_host(name)

    def _register(self, name: str, worker: Any) -> None:
        cfg = worker.model.cfg
        sources = []
        for source_id in worker.registry.ids:
            source = worker.registry.get(source_id)
            sources.append({"id": source_id, "hook_name": source.hook_name, "d_sae": source.d_sae})
        model = inference.ensure_catalog_for_worker(
            model_id=worker.config.model_id, layers=cfg.n_layers, dimension=cfg.d_model,
            instruct=bool(getattr(worker.model.tokenizer, "chat_template", None)), sources=sources)
        inference.register_host(name=name, model=model, device=worker.device,
                                dtype=worker.config.dtype, source_names=worker.registry.ids,
                                info={"pid": os.getpid(), "host": socket.gethostname(),
                                      "prepend_bos": bool(cfg.default_prepend_bos)})
        self.stdout.write(f"registered {name} serving {', '.join(worker.registry.ids) or 'no sources'}")

    def _beat(self, name: str, worker: Any, stop: threading.Event) -> None:
        """Refresh the heartbeat; re-register when the row vanished (deleted in the admin...)."""
        while not stop.wait(settings.INFERENCE_HEARTBEAT_SECONDS):
            close_old_connections()
            try:
                if not inference.heartbeat(name):
                    self._register(name, worker)
            except Exception as exc:  # a database hiccup must not kill the worker
                self.stderr.write(f"heartbeat failed: {exc}")

    def _alive(self, name: str, worker: Any, stop: threading.Event) -> None:
        """The Redis liveness key, refreshed four times per TTL from its own thread (a long operation
        in the consuming thread does not stop it; a killed process does)."""
        interval = max(0.25, inference.liveness_ttl() / 4)
        failing = False
        while not stop.wait(interval):
            try:
                inference.beat(name, worker.config.model_id, worker.registry.ids)
                failing = False
            except Exception as exc:  # Redis down: retry; callers see 503 meanwhile
                if not failing:
                    self.stderr.write(f"liveness heartbeat failed: {exc}")
                failing = True

    @staticmethod
    def _consume(name: str, queue: str, loglevel: str) -> None:
        from neuronpedia.celery import app  # noqa: PLC0415

        app.worker_main(argv=["worker", "-Q", queue, "--pool", "solo", "--concurrency", "1",
                              "--prefetch-multiplier", "1", "--disable-prefetch", "-n", name,
                              "--loglevel", loglevel, "--without-mingle", "--without-gossip"])
