"""Progress and result printing shared by the import/export commands."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, OutputWrapper

from neuronpedia.jobs.models import Job
from neuronpedia.lib.jobs import JobStatus
from transfer.importer.pipeline import Step


def step_printer(out: OutputWrapper) -> Any:
    count = 0

    def on_step(step: Step) -> None:
        nonlocal count
        count += 1
        what = "unchanged, skipped" if step.rows is None else f"{step.rows} rows"
        out.write(f"[{count}] {step.path}: {what} ({step.seconds:.2f} s)")
        out.flush()

    return on_step


def report(job: Job, out: OutputWrapper) -> None:
    """Print the verification table; raise CommandError (exit code 1) when the job did not finish DONE."""
    for name, result in (job.result.get("sources") or {}).items():
        out.write(f"{name}: {'OK' if result['ok'] else 'MISMATCH'} "
                  f"(files: {result['files']['imported']} imported, {result['files']['skipped']} skipped)")
        for table, row in result["tables"].items():
            out.write(f"  {table:<13} expected {row['expected']:>10}  imported {row['imported']:>10}")
    if job.status != JobStatus.DONE:
        raise CommandError(f"job #{job.id} {job.status.lower()}: {job.error or 'cancelled'}")
    out.write(f"job #{job.id} done")
