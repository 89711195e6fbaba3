"""Rows of Neuronpedia's own tables that an import brings along and an export writes back.

- `EvalType` (`config/eval_type.jsonl`): the kinds of SAE evaluation (`core`, `saebench_*`...).
- `InferenceHostSource` (`{source}/inference_hosts.jsonl`) and its link to sources
  (`{source}/inference_hosts_on_source.jsonl`): which upstream inference servers serve a source. These
  are Neuronpedia's records, kept with their ids; our own running workers are `InferenceHost`.
- `UpstreamRecord`: the whole original row of a metadata or catalog file (model.jsonl, source.jsonl,
  config/explanation_type.jsonl...), keyed by table and id. Columns we model are read from our rows;
  the rest (creatorId, createdAt, creatorEmail, isNewUi...) come from here on export, so a round trip
  Neuronpedia -> us -> Neuronpedia loses nothing.
"""

from __future__ import annotations

from django.db import models

from features.models.catalog import Source


class EvalType(models.Model):
    name = models.CharField(primary_key=True, max_length=100)
    display_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    longer_description = models.TextField(blank=True)
    output_schema = models.JSONField(default=dict, blank=True)
    featured = models.BooleanField(default=False)
    url = models.CharField(max_length=500, null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class InferenceHostSource(models.Model):
    id = models.CharField(primary_key=True, max_length=100, help_text="Neuronpedia's id (a cuid)")
    name = models.CharField(max_length=200)
    host_url = models.CharField(max_length=500, blank=True)
    engine = models.CharField(max_length=32, default="TRANSFORMER_LENS")
    model_id = models.CharField(max_length=128, help_text="Neuronpedia model id")
    runpod_serverless_url = models.CharField(max_length=500, null=True, blank=True)
    sources = models.ManyToManyField(Source, blank=True, related_name="upstream_inference_hosts")

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class UpstreamRecord(models.Model):
    table = models.CharField(max_length=40, help_text="Neuronpedia table, e.g. Model, SourceSet")
    key = models.CharField(max_length=300, help_text="its id there, e.g. gpt2-small or gpt2-small/res-jb")
    record = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["table", "key"], name="upstream_record_unique")]

    def __str__(self) -> str:
        return f"{self.table} {self.key}"
