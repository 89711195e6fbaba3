from __future__ import annotations

from django.conf import settings
from django.db import models

from neuronpedia.lib.jobs import JobBase, JobStatus


class JobKind(models.TextChoices):
    NOOP = "noop", "No-op (health check)"
    IMPORT_SOURCE = "import_source", "Import a source"
    EXPORT_SOURCE = "export_source", "Export a source"
    GENERATE_DASHBOARDS = "generate_dashboards", "Generate dashboards"
    AUTOINTERP_BATCH = "autointerp_batch", "Autointerp batch"
    TRAIN_DEMO_SAE = "train_demo_sae", "Train the demo SAE"
    TRAIN_TRANSCODERS = "train_transcoders", "Train transcoders"
    GENERATE_GRAPH = "generate_graph", "Generate an attribution graph"
    SCORE_EXPLANATIONS = "score_explanations", "Score explanations"
    COMPUTE_SIMILAR = "compute_similar", "Compute cross-source similar features"


class Job(JobBase):
    """One long-running piece of work, of any kind; its page shows progress from this row."""

    kind = models.CharField(max_length=32, choices=JobKind.choices, db_index=True)
    title = models.CharField(max_length=300, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    checkpoint = models.JSONField(default=dict, blank=True)
    generation = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="jobs")
    # the Feature catalog object this job works on, when there is one (for the job list)
    model_id_ref = models.CharField(max_length=128, blank=True)
    source_ref = models.CharField(max_length=256, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "status", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def status_label(self) -> str:
        return JobStatus(self.status).label
