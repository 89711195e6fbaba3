"""Compute cross-source similar features (decoder cos-sim) for a model:

    python manage.py compute_similar_features MODEL [--source NAME ...] [--top-k 10] [--wait | --inline]

By default it queues a `compute_similar` job on the default queue (a CPU worker runs it; its page is
/jobs/<id>/), and `--wait` follows its progress until it ends. `--inline` runs the job in this process,
printing progress. Either prints the job's result as JSON when it is done; a failure (e.g. fewer than two
sources with decoder weights) exits with a non-zero status and the reason.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from features.models import Model
from features.similar_jobs import SimilarParams, run_similar_job, start_similar_job
from neuronpedia.jobs.models import Job
from neuronpedia.jobs.services import claim_job, follow_job
from neuronpedia.lib.jobs import JobStatus
from neuronpedia.queues import Queue


class Command(BaseCommand):
    help = "Store each feature's top-k decoder cos-sim neighbours in the other sources of its model."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model")
        parser.add_argument("--source", action="append", dest="sources", default=None,
                            help="only (re)compute this source's rows (repeatable); default: every source")
        parser.add_argument("--top-k", type=int, default=SimilarParams.top_k)
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--wait", action="store_true", help="follow the queued job until it ends")
        how.add_argument("--inline", action="store_true", help="run the job here, without a worker")

    def handle(self, *args: Any, **opts: Any) -> None:
        if not Model.objects.filter(id=opts["model"]).exists():
            raise CommandError(f"no model {opts['model']} in the catalog")
        try:
            params = SimilarParams(sources=tuple(opts["sources"] or ()), top_k=opts["top_k"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if opts["inline"]:
            job = start_similar_job(model_id=opts["model"], params=params, enqueue=False)
            self.stdout.write(f"job {job.id} running inline")
            claim_job(job.id)
            try:
                run_similar_job(job.id, log=self.stdout.write)
            except Exception as exc:
                raise CommandError(f"computing similar features failed (job {job.id}): {exc}") from exc
            self._report(Job.objects.get(id=job.id))
            return
        job = start_similar_job(model_id=opts["model"], params=params)
        self.stdout.write(f"job {job.id} queued on {Queue.DEFAULT}: /jobs/{job.id}/")
        if opts["wait"]:
            self._report(follow_job(job.id, self.stdout.write, interval=1.0))

    def _report(self, job: Job) -> None:
        if job.status != JobStatus.DONE:
            raise CommandError(f"job {job.id} ended {job.status}: {job.error}")
        self.stdout.write(json.dumps(job.result))
