"""The job record every long-running piece of work writes its progress to.

The database is the source of truth for job state: Celery only delivers messages. A task claims a job
with a conditional update (QUEUED -> RUNNING), writes `done/total` and `heartbeat_at` every ~1 s, and
ends in DONE, FAILED (with a readable `error`) or CANCELLED. A RUNNING job whose heartbeat is older
than settings.JOB_STALE_AFTER_SECONDS is marked FAILED, never silently restarted.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone


class JobStatus(models.TextChoices):
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    DONE = "DONE", "Done"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


FINISHED_STATUSES = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})


class JobBase(models.Model):
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED,
                              db_index=True)
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)

    class Meta:
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return min(100.0, 100.0 * self.done / self.total)

    @property
    def eta_seconds(self) -> float | None:
        """Linear estimate from the rate so far; None until there is progress to extrapolate."""
        if self.status != JobStatus.RUNNING or not self.total or not self.done or not self.started_at:
            return None
        elapsed = (timezone.now() - self.started_at).total_seconds()
        return max(0.0, elapsed / self.done * (self.total - self.done))

    def is_stale(self, stale_after: timedelta) -> bool:
        beat = self.heartbeat_at or self.started_at
        return self.status == JobStatus.RUNNING and beat is not None and (
            timezone.now() - beat > stale_after
        )
