"""Checkpoints of imports of Neuronpedia's export layout: one row per file, committed with its rows.

A source is imported into a hidden staging copy first (`staged` checkpoints, one per file, each committed
with the file's rows), then swapped into the live source in one transaction (transfer/importer/swap.py):
after a crash (even SIGKILL) or a bad file the live source is exactly as before, and a restart re-reads
only the files not yet staged with the same sha256.
"""

from __future__ import annotations

from django.db import models


class ImportedFileKind(models.TextChoices):
    CONFIG = "config", "Config catalog"
    METADATA = "metadata", "Source metadata"
    FEATURES = "features", "Features"
    ACTIVATIONS = "activations", "Activations"
    EXPLANATIONS = "explanations", "Explanations"


class ImportedFileStatus(models.TextChoices):
    DONE = "DONE", "Done"
    FAILED = "FAILED", "Failed"


class ImportedFile(models.Model):
    """One file of an export, by its path relative to the base
    (e.g. `gpt2-small/6-res-jb/features/batch-0.jsonl.gz`)."""

    path = models.CharField(max_length=500)
    staged = models.BooleanField(default=False, help_text="loaded into the staging copy, not yet swapped in")
    kind = models.CharField(max_length=16, choices=ImportedFileKind.choices)
    source = models.ForeignKey("features.Source", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="imported_files")
    base = models.CharField(max_length=500, blank=True, help_text="where it was read from")
    status = models.CharField(max_length=8, choices=ImportedFileStatus.choices)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    rows_read = models.BigIntegerField(default=0)
    rows_written = models.BigIntegerField(default=0)
    index_min = models.IntegerField(null=True, blank=True, help_text="lowest feature index in the file")
    index_max = models.IntegerField(null=True, blank=True, help_text="highest feature index in the file")
    row_keys = models.JSONField(default=list, blank=True,
                                help_text="explanation ids of the file (they replace on re-import)")
    error = models.TextField(blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path"]
        indexes = [models.Index(fields=["source", "kind"], name="importedfile_source_kind")]
        constraints = [models.UniqueConstraint(fields=["path", "staged"], name="importedfile_path_staged")]

    def __str__(self) -> str:
        return f"{self.path} ({self.status})"


class ImportPanel(ImportedFile):
    """Admin entry point of the import panel (a proxy: no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "Neuronpedia import"
        verbose_name_plural = "Neuronpedia imports (panel)"
